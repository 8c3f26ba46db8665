namespace PersistentAgents.Learning;

/// <summary>One arm of one agent's bandit for one task type and prompt-complexity bucket.</summary>
public readonly record struct ArmKey(string Tenant, string Agent, string TaskType, string Context, string Provider, string Model)
{
    public GroupKey Group => new(Tenant, Agent, TaskType, Context);
}

/// <summary>The arms that compete for one kind of prompt: they forget together.</summary>
public readonly record struct GroupKey(string Tenant, string Agent, string TaskType, string Context);

/// <summary>
/// What the bandit knows about one arm: a Beta posterior of its success rate and a Normal posterior of the
/// quality of its successful replies. The observed counts are fractional: every outcome in the arm's group
/// multiplies them by the discount, which is how old evidence fades.
/// </summary>
/// <param name="PriorQuality">The catalog's declared quality, the prior of the quality estimate.</param>
/// <param name="Successes">Discounted count of successful calls.</param>
/// <param name="Failures">Discounted count of failed calls.</param>
/// <param name="QualityCount">Discounted count of quality observations (successes and explicit feedback).</param>
/// <param name="QualitySum">Discounted sum of those qualities, 0..1 each.</param>
/// <param name="QualitySquares">Discounted sum of their squares, for the spread of the quality.</param>
/// <param name="CostSum">Discounted sum of the relative cost (cost over the reference cost) of successful calls.</param>
/// <param name="Pulls">Calls ever made, undiscounted.</param>
/// <param name="RecentSuccess">Fast moving average of success (1 or 0), for drift detection.</param>
/// <param name="RecentQuality">Fast moving average of the quality of successful calls, for drift detection.</param>
/// <param name="RecentCount">Calls averaged since the last reset.</param>
/// <param name="Resets">How many times a drift reset this arm's evidence.</param>
/// <param name="Idle">Outcomes of the group since this arm was last called.</param>
/// <param name="ConsecutiveFailures">Failed calls since its last success.</param>
/// <param name="CatalogCost">The relative cost the catalog's prices gave it when last ranked: its cost until it has been paid for.</param>
public sealed record ArmState(
    double PriorQuality,
    double Successes,
    double Failures,
    double QualityCount,
    double QualitySum,
    double QualitySquares,
    double CostSum,
    long Pulls,
    double RecentSuccess,
    double RecentQuality,
    int RecentCount,
    int Resets,
    int Idle,
    int ConsecutiveFailures,
    double CatalogCost)
{
    public static ArmState New(double priorQuality) => new(priorQuality, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}
