namespace PersistentAgents.Bench.Learning.Strategies;

/// <summary>Each step starts the chain one arm further along the catalog.</summary>
internal sealed class RoundRobinStrategy(IReadOnlyList<Arm> catalog) : IRoutingStrategy
{
    private int _next;

    public string Name => "round-robin";

    public ValueTask<IReadOnlyList<Arm>> RankAsync(Step step, CancellationToken cancellationToken)
    {
        var first = _next;
        _next = (_next + 1) % catalog.Count;
        IReadOnlyList<Arm> ranked = [.. catalog.Skip(first), .. catalog.Take(first)];
        return ValueTask.FromResult(ranked);
    }

    public ValueTask RecordAsync(Interaction interaction, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
