using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning;

/// <summary>One variant of one agent's experiment.</summary>
public readonly record struct VariantKey(string Tenant, string Agent, string Experiment, string Variant);

/// <summary>Running sums of a variant's interactions, enough for means, a variance and a t-test.</summary>
public sealed record VariantTally(long Interactions, long Successes, double QualitySum, double CostSum, double MetricSum, double MetricSquares)
{
    public static readonly VariantTally Empty = new(0, 0, 0, 0, 0, 0);

    public VariantTally Add(bool success, double quality, double costUsd, double metric) =>
        new(Interactions + 1, Successes + (success ? 1 : 0), QualitySum + quality, CostSum + costUsd, MetricSum + metric, MetricSquares + (metric * metric));
}

/// <summary>
/// What the learning service keeps in memory for every agent, read once at start: the experiments and their
/// tallies (made by operators, so few). Arms are read per agent, on demand.
/// </summary>
public sealed record LearningSnapshot(
    IReadOnlyList<Experiment> Experiments,
    IReadOnlyDictionary<VariantKey, VariantTally> Tallies);

/// <summary>
/// One outcome's effect, applied atomically and at most once per <see cref="Id"/>: the changed arms, the
/// selection for the history, and the experiment variant's new tally.
/// </summary>
public sealed record LearningUpdate(
    string Id,
    IReadOnlyDictionary<ArmKey, ArmState> Arms,
    Selection? Selection = null,
    KeyValuePair<VariantKey, VariantTally>? Tally = null)
{
    public string Tenant => Arms.Keys.Select(k => k.Tenant).FirstOrDefault() ?? "";

    public string Agent => Arms.Keys.Select(k => k.Agent).FirstOrDefault() ?? "";
}

/// <summary>Where the bandit's state, its selection history and the experiments are kept.</summary>
public interface ILearningStateStore
{
    Task<LearningSnapshot> LoadAsync(CancellationToken cancellationToken);

    /// <summary>Every arm of one agent, of every task type and context.</summary>
    Task<IReadOnlyDictionary<ArmKey, ArmState>> LoadArmsAsync(string tenant, string agent, CancellationToken cancellationToken);

    /// <returns>False, writing nothing, when an update with the same id was applied before.</returns>
    Task<bool> TryApplyAsync(LearningUpdate update, CancellationToken cancellationToken);

    /// <summary>The most recent selections first, of every task type when <paramref name="taskType"/> is empty.</summary>
    Task<IReadOnlyList<Selection>> HistoryAsync(string tenant, string agent, string taskType, int limit, CancellationToken cancellationToken);

    /// <summary>Creates or replaces an experiment; its variants start from empty tallies.</summary>
    Task PutExperimentAsync(Experiment experiment, CancellationToken cancellationToken);

    Task<bool> DeleteExperimentAsync(string tenant, string agent, string name, CancellationToken cancellationToken);
}
