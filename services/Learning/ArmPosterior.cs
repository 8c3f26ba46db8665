namespace PersistentAgents.Learning;

/// <summary>One arm of one agent's bandit for one task type.</summary>
public readonly record struct ArmKey(string Tenant, string Agent, string TaskType, string Provider, string Model)
{
    public bool InGroupOf(ArmKey other) =>
        Tenant == other.Tenant && Agent == other.Agent && TaskType == other.TaskType;
}

/// <summary>
/// A Beta posterior over an arm's utility. The prior pseudo-counts come from the catalog; the observed
/// ones (<see cref="Successes"/>, <see cref="Failures"/>) are fractional and decay with every new
/// outcome in the group, which is how the bandit forgets.
/// </summary>
public sealed record ArmPosterior(double PriorAlpha, double PriorBeta, double Successes, double Failures, long Pulls)
{
    public double Alpha => PriorAlpha + Successes;

    public double Beta => PriorBeta + Failures;

    /// <summary>The expected utility, 0..1.</summary>
    public double Mean => Alpha / (Alpha + Beta);
}
