namespace PersistentAgents.Bench.Learning;

/// <summary>One interaction's prompt: what every strategy is asked to route at this step.</summary>
internal sealed record Step(int Index, string TaskType, double Complexity, long InputTokens, long OutputTokens)
{
    public ComplexityBucket Bucket => Complexity >= 0.5 ? ComplexityBucket.Complex : ComplexityBucket.Simple;
}

/// <summary>What one attempt of one arm at one step came to.</summary>
internal readonly record struct AttemptResult(Arm Arm, bool Success, double Quality, double LatencyMs);

/// <summary>
/// A scenario's whole run drawn up front from its seed: the prompts, and for every step and arm the random
/// numbers an attempt of that arm would use. Every strategy replays the same world, so an arm tried by two
/// strategies at the same step succeeds or fails alike and returns the same quality (common random
/// numbers): the differences between strategies are their decisions, not their luck.
/// </summary>
internal sealed class World
{
    private const double QualityNoiseSd = 0.05;

    private readonly AttemptDraw[,] _draws;
    private readonly double[,] _utilities;
    private readonly Arm[] _bestArms;

    private World(Scenario scenario, double lambda, Step[] steps, AttemptDraw[,] draws)
    {
        Scenario = scenario;
        Lambda = lambda;
        Steps = steps;
        _draws = draws;
        _utilities = new double[steps.Length, scenario.Arms.Count];
        _bestArms = new Arm[steps.Length];
        foreach (var step in steps)
        {
            var mostExpensive = scenario.Arms.Max(a => a.CostUsd(step.InputTokens, step.OutputTokens));
            foreach (var arm in scenario.Arms)
            {
                var truth = scenario.Truth(arm, step.TaskType, step.Bucket, step.Index);
                var relativeCost = arm.CostUsd(step.InputTokens, step.OutputTokens) / mostExpensive;
                _utilities[step.Index, arm.Index] = truth.SuccessRate * (truth.Quality - (lambda * relativeCost));
            }

            // Ties go to catalog order, as MaxBy keeps the first maximum.
            _bestArms[step.Index] = scenario.Arms.MaxBy(a => _utilities[step.Index, a.Index])!;
        }
    }

    public Scenario Scenario { get; }

    /// <summary>λ: utility lost per unit of relative cost.</summary>
    public double Lambda { get; }

    public IReadOnlyList<Step> Steps { get; }

    public static World Generate(Scenario scenario, double lambda)
    {
        var random = new Random(scenario.Seed);
        var steps = new Step[scenario.Steps];
        var draws = new AttemptDraw[scenario.Steps, scenario.Arms.Count];
        for (var i = 0; i < steps.Length; i++)
        {
            var complexity = random.NextDouble();
            // Harder prompts tend to be longer and to get longer replies: input 300..1500, output 100..600 tokens.
            var inputTokens = 300 + (long)Math.Round(1200 * ((0.6 * complexity) + (0.4 * random.NextDouble())));
            var outputTokens = 100 + (long)Math.Round(500 * ((0.5 * complexity) + (0.5 * random.NextDouble())));
            steps[i] = new Step(i, DrawTaskType(scenario.TaskMix, random.NextDouble()), complexity, inputTokens, outputTokens);
            for (var a = 0; a < scenario.Arms.Count; a++)
            {
                draws[i, a] = new AttemptDraw(random.NextDouble(), QualityNoiseSd * StandardNormal(random), 0.75 + (0.5 * random.NextDouble()));
            }
        }

        return new World(scenario, lambda, steps, draws);
    }

    /// <summary>
    /// The expected utility of routing <paramref name="step"/> to <paramref name="arm"/> first: success rate ×
    /// (quality − λ · cost relative to the most expensive arm for the step's tokens).
    /// </summary>
    public double Utility(Step step, Arm arm) => _utilities[step.Index, arm.Index];

    /// <summary>The arm with the highest true expected utility at <paramref name="step"/>.</summary>
    public Arm BestArm(Step step) => _bestArms[step.Index];

    public AttemptResult Attempt(Step step, Arm arm)
    {
        var truth = Scenario.Truth(arm, step.TaskType, step.Bucket, step.Index);
        var draw = _draws[step.Index, arm.Index];
        var success = draw.SuccessRoll < truth.SuccessRate;
        return new AttemptResult(arm, success, success ? Math.Clamp(truth.Quality + draw.QualityNoise, 0, 1) : 0, truth.LatencyMs * draw.LatencyFactor);
    }

    /// <summary>What the most expensive candidate would have charged for the step's tokens.</summary>
    public double ReferenceCostUsd(Step step) => Scenario.Arms.Max(a => a.CostUsd(step.InputTokens, step.OutputTokens));

    private static string DrawTaskType(IReadOnlyList<TaskMix> mix, double roll)
    {
        var threshold = roll * mix.Sum(m => m.Share);
        foreach (var entry in mix)
        {
            threshold -= entry.Share;
            if (threshold < 0)
            {
                return entry.TaskType;
            }
        }

        return mix[^1].TaskType;
    }

    /// <summary>Box–Muller.</summary>
    private static double StandardNormal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private readonly record struct AttemptDraw(double SuccessRoll, double QualityNoise, double LatencyFactor);
}
