namespace PersistentAgents.Bench.Learning.Strategies;

/// <summary>
/// Knows the truth, drift and outages included: ranks by true expected utility at every step. Its regret is
/// zero by definition; it is the yardstick for every other strategy's quality and cost.
/// </summary>
internal sealed class OracleStrategy(World world) : IRoutingStrategy
{
    public string Name => ScenarioResult.Oracle;

    public ValueTask<IReadOnlyList<Arm>> RankAsync(Step step, CancellationToken cancellationToken)
    {
        // Stable sort: ties in catalog order, so the first is World.BestArm.
        IReadOnlyList<Arm> ranked = [.. world.Scenario.Arms.OrderByDescending(a => world.Utility(step, a))];
        return ValueTask.FromResult(ranked);
    }

    public ValueTask RecordAsync(Interaction interaction, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
