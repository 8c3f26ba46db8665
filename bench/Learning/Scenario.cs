namespace PersistentAgents.Bench.Learning;

/// <summary>A (provider, model) route as the catalog lists it: list prices and the declared quality.</summary>
internal sealed record Arm(int Index, string Provider, string Model, double InputPricePerMtok, double OutputPricePerMtok, double DeclaredQuality)
{
    public string Label => $"{Provider}/{Model}";

    public double CostUsd(long inputTokens, long outputTokens) =>
        ((inputTokens * InputPricePerMtok) + (outputTokens * OutputPricePerMtok)) / 1e6;
}

/// <summary>What an arm really does on one kind of prompt at one step: unknown to every strategy but the oracle.</summary>
internal readonly record struct ArmTruth(double SuccessRate, double Quality, double LatencyMs);

internal enum ComplexityBucket
{
    Simple,
    Complex,
}

/// <summary>A task type and its share of the traffic.</summary>
internal sealed record TaskMix(string TaskType, double Share);

/// <summary>
/// A step at which the truth changes for some task types; adaptation is measured over the interactions of
/// those task types from this step until the next change point.
/// </summary>
/// <param name="Changed">The arm whose behaviour changes.</param>
/// <param name="Recovers">True when the arm gets better (traffic should come back to it), false when it degrades.</param>
internal sealed record ChangePoint(string Name, int Step, IReadOnlyList<string> TaskTypes, Arm Changed, bool Recovers);

/// <summary>A change of one arm's truth over a range of steps, for every task type or one.</summary>
internal sealed record TruthChange(int ArmIndex, string? TaskType, int FromStep, int ToStep, Func<ArmTruth, ArmTruth> Apply)
{
    public bool Covers(int armIndex, string taskType, int step) =>
        armIndex == ArmIndex && (TaskType is null || TaskType == taskType) && step >= FromStep && step < ToStep;
}

/// <summary>
/// A seeded world: the catalog, the traffic mix, the true behaviour of every arm per task type and
/// complexity bucket, and the changes of that behaviour over the run.
/// </summary>
internal sealed class Scenario
{
    private readonly IReadOnlyDictionary<(int Arm, string TaskType, ComplexityBucket Bucket), ArmTruth> _baseTruth;
    private readonly IReadOnlyList<TruthChange> _changes;

    public Scenario(
        string name,
        string description,
        int seed,
        int steps,
        IReadOnlyList<Arm> arms,
        IReadOnlyList<TaskMix> taskMix,
        IReadOnlyDictionary<(int Arm, string TaskType, ComplexityBucket Bucket), ArmTruth> baseTruth,
        IReadOnlyList<TruthChange> changes,
        IReadOnlyList<ChangePoint> changePoints)
    {
        Name = name;
        Description = description;
        Seed = seed;
        Steps = steps;
        Arms = arms;
        TaskMix = taskMix;
        _baseTruth = baseTruth;
        _changes = changes;
        ChangePoints = changePoints;
    }

    public string Name { get; }

    public string Description { get; }

    public int Seed { get; }

    public int Steps { get; }

    /// <summary>The candidates in catalog order (the order the seed's rule breaks ties by).</summary>
    public IReadOnlyList<Arm> Arms { get; }

    public IReadOnlyList<TaskMix> TaskMix { get; }

    public IReadOnlyList<ChangePoint> ChangePoints { get; }

    public ArmTruth Truth(Arm arm, string taskType, ComplexityBucket bucket, int step)
    {
        var truth = _baseTruth[(arm.Index, taskType, bucket)];
        foreach (var change in _changes)
        {
            if (change.Covers(arm.Index, taskType, step))
            {
                truth = change.Apply(truth);
            }
        }

        return truth;
    }
}
