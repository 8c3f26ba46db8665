namespace PersistentAgents.Bench.Learning;

/// <summary>Every strategy's run over one scenario, in table order, with the derived comparisons.</summary>
internal sealed class ScenarioResult(World world, IReadOnlyList<RunResult> runs)
{
    public const string SeedRule = "seed rule";
    public const string Oracle = "oracle";
    public const string Ours = "ours";

    public World World { get; } = world;

    public Scenario Scenario => World.Scenario;

    public IReadOnlyList<RunResult> Runs { get; } = runs;

    public RunResult Run(string strategy) => Runs.Single(r => r.Strategy == strategy);

    /// <summary>How the run followed each change point, in the scenario's order.</summary>
    public IReadOnlyList<(ChangePoint Change, AdaptationResult Result)> Adaptations(RunResult run) =>
        [.. Scenario.ChangePoints.Select(c => (c, Adaptation.Of(World, run, c)))];
}
