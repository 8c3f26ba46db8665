namespace PersistentAgents.Learning.Tests;

/// <summary>An <see cref="ILearningStateStore"/> in a dictionary, with the same exactly-once contract as the SQLite one.</summary>
internal sealed class InMemoryLearningStateStore : ILearningStateStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ArmKey, ArmPosterior> _posteriors = [];
    private readonly HashSet<string> _applied = new(StringComparer.Ordinal);

    public int AppliedCount
    {
        get
        {
            lock (_lock)
            {
                return _applied.Count;
            }
        }
    }

    public Task<IReadOnlyDictionary<ArmKey, ArmPosterior>> LoadAllAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyDictionary<ArmKey, ArmPosterior>>(new Dictionary<ArmKey, ArmPosterior>(_posteriors));
        }
    }

    public Task<bool> TryApplyAsync(string interactionId, IReadOnlyDictionary<ArmKey, ArmPosterior> changed, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_applied.Add(interactionId))
            {
                return Task.FromResult(false);
            }

            foreach (var (key, posterior) in changed)
            {
                _posteriors[key] = posterior;
            }

            return Task.FromResult(true);
        }
    }
}
