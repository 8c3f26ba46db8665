namespace PersistentAgents.Bench.Learning.Strategies;

/// <summary>A routing policy under test: orders the candidates for a step, then learns from what came of it.</summary>
internal interface IRoutingStrategy
{
    string Name { get; }

    /// <summary>Every arm of the scenario, best first: the first is the routing decision, the rest the fallback chain.</summary>
    ValueTask<IReadOnlyList<Arm>> RankAsync(Step step, CancellationToken cancellationToken);

    ValueTask RecordAsync(Interaction interaction, CancellationToken cancellationToken);
}

/// <summary>One finished interaction: the ranking a strategy gave and the attempts made down its chain.</summary>
internal sealed record Interaction(
    Step Step,
    IReadOnlyList<Arm> Ranked,
    IReadOnlyList<AttemptResult> Attempts,
    bool Success,
    double Quality,
    double CostUsd,
    double ReferenceCostUsd,
    double LatencyMs);
