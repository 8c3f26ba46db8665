namespace PersistentAgents.Bench.Learning.Strategies;

/// <summary>
/// The seed's rule: score[taskType:provider] += quality on a success, score = max(0, score − 1) on a failure;
/// highest score first, ties in catalog order. It never explores, so it keeps the first arm that earns a score.
/// </summary>
internal sealed class SeedRuleStrategy(IReadOnlyList<Arm> catalog) : IRoutingStrategy
{
    private readonly Dictionary<(string TaskType, string Provider), double> _scores = [];

    public string Name => ScenarioResult.SeedRule;

    public ValueTask<IReadOnlyList<Arm>> RankAsync(Step step, CancellationToken cancellationToken)
    {
        // OrderByDescending is stable: equal scores keep catalog order.
        IReadOnlyList<Arm> ranked = [.. catalog.OrderByDescending(a => _scores.GetValueOrDefault((step.TaskType, a.Provider)))];
        return ValueTask.FromResult(ranked);
    }

    public ValueTask RecordAsync(Interaction interaction, CancellationToken cancellationToken)
    {
        foreach (var attempt in interaction.Attempts)
        {
            var key = (interaction.Step.TaskType, attempt.Arm.Provider);
            var score = _scores.GetValueOrDefault(key);
            _scores[key] = attempt.Success ? score + attempt.Quality : Math.Max(0, score - 1);
        }

        return ValueTask.CompletedTask;
    }
}
