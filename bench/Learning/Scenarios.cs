using System.Collections.ObjectModel;
using System.Globalization;

namespace PersistentAgents.Bench.Learning;

/// <summary>
/// The shipped scenarios. Every one uses the same four-arm catalog, listed in the order of the project's own
/// catalog (services/Gateway/catalog.yaml: frontier, balanced, budget) with a second mid-priced provider added at
/// the end. Quality noise, failure rates of 2–6 % and a utility gap of a few hundredths between the best arm
/// and the runner-up keep the learning problem honest: nothing is won by a mile.
/// </summary>
internal static class Scenarios
{
    public const int DefaultSteps = 4000;

    private static readonly Arm Frontier = new(0, "sim-frontier", "frontier-large", 3.00, 15.00, 0.92);
    private static readonly Arm Balanced = new(1, "sim-balanced", "balanced-medium", 0.50, 1.50, 0.80);
    private static readonly Arm Budget = new(2, "sim-budget", "budget-small", 0.05, 0.20, 0.60);
    private static readonly Arm Midrange = new(3, "sim-midrange", "midrange-plus", 0.80, 3.20, 0.82);
    private static readonly Arm[] Catalog = [Frontier, Balanced, Budget, Midrange];

    public static IReadOnlyList<string> Names { get; } = ["stationary", "drift", "outage-recovery", "complexity-mix"];

    public static Scenario Create(string name, int steps) => name switch
    {
        "stationary" => Stationary(steps),
        "drift" => Drift(steps),
        "outage-recovery" => OutageRecovery(steps),
        "complexity-mix" => ComplexityMix(steps),
        _ => throw new ArgumentException($"unknown scenario '{name}'; one of: {string.Join(", ", Names)}", nameof(name)),
    };

    /// <summary>
    /// Three task types with different leaders: the balanced model on support replies, the second mid-priced
    /// one on simple legal triage and code review, the frontier model on complex legal triage.
    /// </summary>
    private static Scenario Stationary(int steps)
    {
        var truth = new TruthTable()
            .Task("support_reply", frontier: (0.93, 0.91), balanced: (0.88, 0.82), budget: (0.84, 0.62), midrange: (0.85, 0.80))
            .Task("legal_triage", frontier: (0.95, 0.94), balanced: (0.76, 0.64), budget: (0.55, 0.38), midrange: (0.86, 0.71))
            .Task("code_review", frontier: (0.94, 0.93), balanced: (0.82, 0.70), budget: (0.70, 0.45), midrange: (0.80, 0.78));
        return new Scenario(
            "stationary",
            "nothing changes; support_reply 50 %, legal_triage 30 %, code_review 20 % of the traffic",
            seed: 101,
            steps,
            Catalog,
            [new("support_reply", 0.5), new("legal_triage", 0.3), new("code_review", 0.2)],
            truth.Build(),
            changes: [],
            changePoints: []);
    }

    /// <summary>The leader of support replies (the balanced model) loses 0.35 of quality for good.</summary>
    private static Scenario Drift(int steps)
    {
        var driftStep = ChangeStep(steps);
        var truth = new TruthTable()
            .Task("support_reply", frontier: (0.93, 0.91), balanced: (0.90, 0.84), budget: (0.80, 0.60), midrange: (0.87, 0.84))
            .Task("legal_triage", frontier: (0.95, 0.94), balanced: (0.76, 0.64), budget: (0.55, 0.38), midrange: (0.86, 0.71));
        return new Scenario(
            "drift",
            Invariant($"at step {driftStep} sim-balanced's support_reply quality falls by 0.35 (0.90 → 0.55 simple, 0.84 → 0.49 complex) and stays there; support_reply 60 %, legal_triage 40 %"),
            seed: 202,
            steps,
            Catalog,
            [new("support_reply", 0.6), new("legal_triage", 0.4)],
            truth.Build(),
            changes: [new(Balanced.Index, "support_reply", driftStep, int.MaxValue, t => t with { Quality = t.Quality - 0.35 })],
            changePoints: [new("drift", driftStep, ["support_reply"], Balanced, Recovers: false)]);
    }

    /// <summary>The provider that leads both task types on simple prompts fails every call for a while, then recovers.</summary>
    private static Scenario OutageRecovery(int steps)
    {
        var outageStep = ChangeStep(steps);
        var recoveryStep = RecoveryStep(steps);
        var truth = new TruthTable()
            .Task("support_reply", frontier: (0.93, 0.91), balanced: (0.90, 0.84), budget: (0.78, 0.60), midrange: (0.86, 0.80))
            .Task("code_review", frontier: (0.94, 0.93), balanced: (0.86, 0.70), budget: (0.70, 0.45), midrange: (0.80, 0.80));
        string[] affected = ["support_reply", "code_review"];
        return new Scenario(
            "outage-recovery",
            Invariant($"sim-balanced fails every call from step {outageStep} to {recoveryStep}, then recovers fully; support_reply 60 %, code_review 40 %"),
            seed: 303,
            steps,
            Catalog,
            [new("support_reply", 0.6), new("code_review", 0.4)],
            truth.Build(),
            changes: [new(Balanced.Index, TaskType: null, outageStep, recoveryStep, t => t with { SuccessRate = 0 })],
            changePoints: [new("outage", outageStep, affected, Balanced, Recovers: false), new("recovery", recoveryStep, affected, Balanced, Recovers: true)]);
    }

    /// <summary>
    /// The budget model is nearly as good as the others on simple prompts and far worse on complex ones, so
    /// at the balanced policy simple prompts belong to it and complex ones to the frontier model.
    /// </summary>
    private static Scenario ComplexityMix(int steps)
    {
        var truth = new TruthTable()
            .Task("summarise", frontier: (0.93, 0.95), balanced: (0.84, 0.66), budget: (0.88, 0.52), midrange: (0.85, 0.70))
            .Task("extract", frontier: (0.94, 0.93), balanced: (0.86, 0.66), budget: (0.90, 0.50), midrange: (0.86, 0.70));
        return new Scenario(
            "complexity-mix",
            "nothing changes; simple prompts are best served by sim-budget, complex ones by sim-frontier; summarise 50 %, extract 50 %",
            seed: 404,
            steps,
            Catalog,
            [new("summarise", 0.5), new("extract", 0.5)],
            truth.Build(),
            changes: [],
            changePoints: []);
    }

    /// <summary>Step 1500 of a 4000-step run; scaled with --steps.</summary>
    private static int ChangeStep(int steps) => steps * 3 / 8;

    /// <summary>Step 2300 of a 4000-step run; scaled with --steps.</summary>
    private static int RecoveryStep(int steps) => steps * 23 / 40;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Quality per task type and complexity bucket; reliability and latency are the arm's own. Complex
    /// prompts take half as long again.
    /// </summary>
    private sealed class TruthTable
    {
        private static readonly Dictionary<int, (double FailureRate, double LatencyMs)> Reliability = new()
        {
            [Frontier.Index] = (0.02, 2400),
            [Balanced.Index] = (0.03, 1100),
            [Budget.Index] = (0.06, 500),
            [Midrange.Index] = (0.04, 1400),
        };

        private readonly Dictionary<(int Arm, string TaskType, ComplexityBucket Bucket), ArmTruth> _truth = [];

        public TruthTable Task(
            string taskType,
            (double Simple, double Complex) frontier,
            (double Simple, double Complex) balanced,
            (double Simple, double Complex) budget,
            (double Simple, double Complex) midrange)
        {
            Add(Frontier, taskType, frontier);
            Add(Balanced, taskType, balanced);
            Add(Budget, taskType, budget);
            Add(Midrange, taskType, midrange);
            return this;
        }

        public ReadOnlyDictionary<(int Arm, string TaskType, ComplexityBucket Bucket), ArmTruth> Build() => _truth.AsReadOnly();

        private void Add(Arm arm, string taskType, (double Simple, double Complex) quality)
        {
            var (failureRate, latencyMs) = Reliability[arm.Index];
            _truth[(arm.Index, taskType, ComplexityBucket.Simple)] = new(1 - failureRate, quality.Simple, latencyMs);
            _truth[(arm.Index, taskType, ComplexityBucket.Complex)] = new(1 - failureRate, quality.Complex, latencyMs * 1.5);
        }
    }
}
