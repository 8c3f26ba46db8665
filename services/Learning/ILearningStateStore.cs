namespace PersistentAgents.Learning;

/// <summary>Where the bandit's posteriors and the ids of outcomes already applied are kept.</summary>
public interface ILearningStateStore
{
    Task<IReadOnlyDictionary<ArmKey, ArmPosterior>> LoadAllAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Writes <paramref name="changed"/> and marks <paramref name="interactionId"/> applied, atomically.
    /// </summary>
    /// <returns>False, writing nothing, when the interaction was applied before.</returns>
    Task<bool> TryApplyAsync(string interactionId, IReadOnlyDictionary<ArmKey, ArmPosterior> changed, CancellationToken cancellationToken);
}
