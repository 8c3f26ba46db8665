namespace PersistentAgents.Bench.Learning;

/// <summary>Ours run over a scenario's world with its Thompson sampling drawn from <paramref name="SamplingSeed"/>.</summary>
internal sealed record SamplingSeedRun(int SamplingSeed, RunResult Run);

/// <summary>Every strategy's run over one scenario, in table order, with the derived comparisons.</summary>
internal sealed class ScenarioResult(World world, IReadOnlyList<RunResult> runs, IReadOnlyList<SamplingSeedRun> oursOverSamplingSeeds)
{
    public const string SeedRule = "seed rule";
    public const string Oracle = "oracle";
    public const string Ours = "ours";

    public World World { get; } = world;

    public Scenario Scenario => World.Scenario;

    public IReadOnlyList<RunResult> Runs { get; } = runs;

    /// <summary>
    /// Ours again over the same world with other sampling seeds than the scenario's, so that one lucky seed
    /// cannot carry the result; no other strategy samples, so their runs stand for every seed.
    /// </summary>
    public IReadOnlyList<SamplingSeedRun> OursOverSamplingSeeds { get; } = oursOverSamplingSeeds;

    public RunResult Run(string strategy) => Runs.Single(r => r.Strategy == strategy);

    /// <summary>How the run followed each change point, in the scenario's order.</summary>
    public IReadOnlyList<(ChangePoint Change, AdaptationResult Result)> Adaptations(RunResult run) =>
        [.. Scenario.ChangePoints.Select(c => (c, Adaptation.Of(World, run, c)))];
}
