namespace PersistentAgents.Bench.Learning.Strategies;

/// <summary>The same chain at every step, from the catalog alone; it learns nothing.</summary>
internal sealed class FixedOrderStrategy : IRoutingStrategy
{
    private readonly IReadOnlyList<Arm> _ranked;

    private FixedOrderStrategy(string name, IReadOnlyList<Arm> ranked)
    {
        Name = name;
        _ranked = ranked;
    }

    public string Name { get; }

    /// <summary>Lowest list price (input + output per 1M tokens) first.</summary>
    public static FixedOrderStrategy Cheapest(IReadOnlyList<Arm> catalog) =>
        new("always-cheapest", [.. catalog.OrderBy(a => a.InputPricePerMtok + a.OutputPricePerMtok)]);

    /// <summary>Highest declared (catalog) quality first.</summary>
    public static FixedOrderStrategy BestDeclaredQuality(IReadOnlyList<Arm> catalog) =>
        new("always-best-quality", [.. catalog.OrderByDescending(a => a.DeclaredQuality)]);

    public ValueTask<IReadOnlyList<Arm>> RankAsync(Step step, CancellationToken cancellationToken) => ValueTask.FromResult(_ranked);

    public ValueTask RecordAsync(Interaction interaction, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
