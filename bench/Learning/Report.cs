using System.Globalization;
using System.Text;

namespace PersistentAgents.Bench.Learning;

/// <summary>The markdown the benchmark prints and writes into bench/README.md.</summary>
internal static class Report
{
    public const double RegretTarget = 0.5;
    public const double CostTarget = 1.15;
    public const double QualityTarget = 0.97;
    public const int AdaptationTarget = 50;

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>How the figures are made, for the reader of the tables.</summary>
    public static string Method(int steps, double lambda, int samplingSeeds) => Format($"""
        Each scenario is a seeded world of {steps} interactions: a task type drawn from the traffic mix, a prompt
        complexity drawn uniformly from 0..1 ("complex" from 0.5), input and output tokens that grow with it, and for
        every step and arm the random numbers an attempt would use, so every strategy faces the same prompts and the
        same luck. An arm's true success rate, quality (±N(0, 0.05) per reply) and latency depend on the task type and
        the complexity bucket. Each strategy ranks the four arms; up to {Simulation.MaxAttempts} are tried down the chain, a failed
        attempt is not billed, and the reply's quality is 0 when every attempt failed.

        - **Utility** of an arm at a step: success rate × (quality − λ · its cost ÷ the most expensive arm's cost for
          the step's tokens), λ = {lambda} (`CostPolicy.Balanced`). The oracle ranks by the true utility.
        - **Seed rule**: it never explores. With every score at 0 it takes the first catalog arm, whose score then only
          grows, so it keeps the frontier model (as always-best-quality does) unless that arm fails over and over.
        - **Regret**: cumulative pseudo-regret of the routing decision, Σ (best arm's utility − first-ranked arm's
          utility), so outcome noise does not count.
        - **Adaptation** after a change point, over the interactions of the changed task types: *moved* is how many
          it took until the last {Adaptation.Window} ranked the changed arm first in under {Adaptation.LeftShare:P0} of them (after a degradation)
          or in at least {Adaptation.BackShare:P0} (after a recovery), counted to the end of that window; *converged* (in brackets)
          is how many went by before the first run of {Adaptation.Window} in which at least {Adaptation.RequiredInWindow} had the oracle's best arm
          ranked first, a stricter figure that also asks for the right choice among the remaining arms. "never": not
          before the next change point or the end.
        - **Targets** for ours: regret ≤ {RegretTarget} × the seed rule's, cost ≤ {CostTarget} × the oracle's, mean quality
          ≥ {QualityTarget} × the oracle's, adaptation (moved) ≤ {AdaptationTarget} interactions.
        - **Sampling seeds**: ours draws its Thompson samples from a generator seeded with the scenario's seed. So that
          one lucky seed cannot carry the result, ours is run again over the same world with seeds seed + 1 … seed + {samplingSeeds}
          (no other strategy samples, so their runs stand), and each target's figure is given as min, median and max
          over those runs, with how many met it and how many met every target. A run's adaptation is its slowest
          change point's.
        """);

    /// <summary>The arms as the catalog declares them; their true behaviour per scenario is in Scenarios.cs.</summary>
    public static string Catalog(IReadOnlyList<Arm> arms)
    {
        var text = new StringBuilder();
        text.Append("| arm (catalog order) | input USD / 1M tokens | output USD / 1M tokens | declared quality |\n");
        text.Append("|---|---:|---:|---:|\n");
        foreach (var arm in arms)
        {
            text.Append(Format($"| `{arm.Label}` | {arm.InputPricePerMtok:F2} | {arm.OutputPricePerMtok:F2} | {arm.DeclaredQuality:F2} |\n"));
        }

        return text.ToString();
    }

    public static string Tables(IReadOnlyList<ScenarioResult> results, Func<Scenario, string?> chartLink)
    {
        var text = new StringBuilder();
        foreach (var result in results)
        {
            text.Append(ScenarioTables(result, chartLink(result.Scenario)));
        }

        text.Append(Summary(results));
        return text.ToString();
    }

    private static string ScenarioTables(ScenarioResult result, string? chartLink)
    {
        var seed = result.Run(ScenarioResult.SeedRule);
        var oracle = result.Run(ScenarioResult.Oracle);
        var text = new StringBuilder();
        text.Append(Format($"### {result.Scenario.Name}\n\n{result.Scenario.Description} (seed {result.Scenario.Seed}).\n\n"));
        text.Append("| strategy | regret | regret ÷ seed rule | mean quality | quality ÷ oracle | cost (USD) | cost ÷ oracle | success | mean latency (ms) | adaptation |\n");
        text.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var run in result.Runs)
        {
            var name = run.Strategy == ScenarioResult.Ours ? $"**{run.Strategy}**" : run.Strategy;
            text.Append(Format($"| {name} | {run.Regret:F1} | {Ratio(run.Regret, seed.Regret)} | {run.MeanQuality:F3} | {Ratio(run.MeanQuality, oracle.MeanQuality)} | {run.CostUsd:F2} | {Ratio(run.CostUsd, oracle.CostUsd)} | {run.SuccessRate:P1} | {run.MeanLatencyMs:F0} | {AdaptationCell(result.Adaptations(run))} |\n"));
        }

        text.Append('\n').Append(TargetsLine(result)).Append("\n\n");
        text.Append(SamplingSeedsTable(result)).Append('\n');
        text.Append("Share of the traffic ranked first, per arm:\n\n");
        text.Append("| strategy | ").AppendJoin(" | ", result.Scenario.Arms.Select(a => $"`{a.Label}`")).Append(" |\n");
        text.Append("|---|").AppendJoin(string.Empty, result.Scenario.Arms.Select(_ => "---:|")).Append('\n');
        foreach (var run in result.Runs)
        {
            text.Append(Format($"| {run.Strategy} | "))
                .AppendJoin(" | ", run.FirstRankedCounts.Select(c => ((double)c / run.Steps).ToString("P1", Invariant)))
                .Append(" |\n");
        }

        if (chartLink is not null)
        {
            text.Append(Format($"\n![Cumulative regret, {result.Scenario.Name}]({chartLink})\n"));
        }

        text.Append('\n');
        return text.ToString();
    }

    private static string TargetsLine(ScenarioResult result)
    {
        var checks = Targets(result, result.Run(ScenarioResult.Ours));
        return "Targets for ours: " + string.Join(" · ", checks.Select(c => $"{c.Name}: **{(c.Met ? "PASS" : "FAIL")}** ({c.Measured})"));
    }

    /// <summary>The spread of each target's figure over the runs of ours with the other sampling seeds.</summary>
    private static string SamplingSeedsTable(ScenarioResult result)
    {
        var reruns = result.OursOverSamplingSeeds;
        var checksPerRun = reruns.Select(r => Targets(result, r.Run)).ToList();
        var text = new StringBuilder();
        text.Append(Format($"| ours over {reruns.Count} sampling seeds ({reruns[0].SamplingSeed} … {reruns[^1].SamplingSeed}) | min | median | max | met in |\n"));
        text.Append("|---|---:|---:|---:|---:|\n");
        for (var target = 0; target < checksPerRun[0].Count; target++)
        {
            var checks = checksPerRun.Select(c => c[target]).ToList();
            var values = checks.Select(c => c.Value).Order().ToList();
            var show = checks[0].Show;
            text.Append(Format($"| {checks[0].Name} | {show(values[0])} | {show(Median(values))} | {show(values[^1])} | {checks.Count(c => c.Met)} of {checks.Count} |\n"));
        }

        text.Append(Format($"| **every target** | | | | **{MetEveryTarget(result)} of {reruns.Count}** |\n"));
        if (result.Scenario.ChangePoints.Count > 1)
        {
            text.Append("\nA run's adaptation is its slowest change point's.\n");
        }

        return text.ToString();
    }

    private static int MetEveryTarget(ScenarioResult result) =>
        result.OursOverSamplingSeeds.Count(r => Targets(result, r.Run).All(c => c.Met));

    private static string Summary(IReadOnlyList<ScenarioResult> results)
    {
        var checks = results.SelectMany(r => Targets(r, r.Run(ScenarioResult.Ours)).Select(c => (Scenario: r.Scenario.Name, Check: c))).ToList();
        var missed = checks.Where(c => !c.Check.Met).ToList();
        var text = new StringBuilder();
        text.Append(Format($"### Summary\n\nOurs met {checks.Count - missed.Count} of {checks.Count} targets over {results.Count} {(results.Count == 1 ? "scenario" : "scenarios")}"));
        if (missed.Count == 0)
        {
            text.Append(".\n");
        }
        else
        {
            text.Append("; missed:\n\n");
            foreach (var (scenario, check) in missed)
            {
                text.Append(Format($"- {scenario}: {check.Name} ({check.Measured})\n"));
            }
        }

        var samplingSeeds = results[0].OursOverSamplingSeeds.Count;
        var spread = results.Select(r => Format($"{MetEveryTarget(r)} of {samplingSeeds} ({r.Scenario.Name})"));
        text.Append(Format($"\nOver {samplingSeeds} more sampling seeds per scenario (its seed + 1 … + {samplingSeeds}), ours met every target in {string.Join(", ", spread)}.\n"));

        return text.ToString();
    }

    /// <summary>The targets for <paramref name="ours"/>, a run of ours over the scenario's world with any sampling seed.</summary>
    private static List<TargetCheck> Targets(ScenarioResult result, RunResult ours)
    {
        var seed = result.Run(ScenarioResult.SeedRule);
        var oracle = result.Run(ScenarioResult.Oracle);
        var checks = new List<TargetCheck>
        {
            RatioCheck(Format($"regret ≤ {RegretTarget} × seed rule"), ours.Regret <= RegretTarget * seed.Regret, ours.Regret, seed.Regret),
            RatioCheck(Format($"cost ≤ {CostTarget} × oracle"), ours.CostUsd <= CostTarget * oracle.CostUsd, ours.CostUsd, oracle.CostUsd),
            RatioCheck(Format($"quality ≥ {QualityTarget} × oracle"), ours.MeanQuality >= QualityTarget * oracle.MeanQuality, ours.MeanQuality, oracle.MeanQuality),
        };
        var adaptations = result.Adaptations(ours);
        if (adaptations.Count > 0)
        {
            checks.Add(new(
                Format($"adaptation ≤ {AdaptationTarget}"),
                adaptations.All(a => a.Result.Moved <= AdaptationTarget),
                AdaptationCell(adaptations),
                adaptations.Max(a => (double?)a.Result.Moved ?? double.PositiveInfinity),
                Interactions));
        }

        return checks;
    }

    private static string AdaptationCell(IReadOnlyList<(ChangePoint Change, AdaptationResult Result)> adaptations) => adaptations.Count switch
    {
        0 => "—",
        1 => AdaptationValue(adaptations[0].Result),
        _ => string.Join(", ", adaptations.Select(a => $"{a.Change.Name} {AdaptationValue(a.Result)}")),
    };

    private static string AdaptationValue(AdaptationResult result) =>
        $"{Count(result.Moved)} ({Count(result.Converged)})";

    private static string Count(int? interactions) => interactions?.ToString(Invariant) ?? "never";

    private static TargetCheck RatioCheck(string name, bool met, double value, double reference)
    {
        var ratio = RatioOf(value, reference);
        return new(name, met, RatioText(ratio), ratio, RatioText);
    }

    private static string Ratio(double value, double reference) => RatioText(RatioOf(value, reference));

    private static double RatioOf(double value, double reference) =>
        reference == 0 ? (value == 0 ? 1 : double.PositiveInfinity) : value / reference;

    private static string RatioText(double ratio) =>
        double.IsPositiveInfinity(ratio) ? "∞" : ratio.ToString("F3", Invariant) + "×";

    /// <summary>A count of interactions, or a median of two; ∞ is a change point never followed.</summary>
    private static string Interactions(double interactions) =>
        double.IsPositiveInfinity(interactions) ? "never" : interactions.ToString("0.#", Invariant);

    /// <summary>The middle of <paramref name="sorted"/>, or the mean of its two middle values for an even count.</summary>
    private static double Median(List<double> sorted) =>
        sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;

    private static string Format(FormattableString text) => text.ToString(Invariant);

    /// <param name="Measured">The figure as the targets line shows it.</param>
    /// <param name="Value">
    /// The figure the target bounds, for the spread over sampling seeds: the ratio, or the slowest change point's
    /// interactions moved (∞: never).
    /// </param>
    /// <param name="Show">How <paramref name="Value"/> and the min, median and max of it are written.</param>
    private sealed record TargetCheck(string Name, bool Met, string Measured, double Value, Func<double, string> Show);
}
