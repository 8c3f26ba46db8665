using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning;

/// <summary>
/// An <see cref="ILearningStateStore"/> in memory, with the same exactly-once contract as the durable
/// ones: for simulations and tests, where state need not outlive the process.
/// </summary>
public sealed class InMemoryLearningStateStore(int historyPerAgent = 5_000) : ILearningStateStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ArmKey, ArmState> _arms = [];
    private readonly HashSet<string> _applied = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Tenant, string Agent), LinkedList<Selection>> _history = [];
    private readonly List<Experiment> _experiments = [];
    private readonly Dictionary<VariantKey, VariantTally> _tallies = [];

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

    public Task<LearningSnapshot> LoadAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(new LearningSnapshot([.. _experiments.Select(e => e.Clone())], new Dictionary<VariantKey, VariantTally>(_tallies)));
        }
    }

    public Task<IReadOnlyDictionary<ArmKey, ArmState>> LoadArmsAsync(string tenant, string agent, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<IReadOnlyDictionary<ArmKey, ArmState>>(_arms.Where(a => a.Key.Tenant == tenant && a.Key.Agent == agent).ToDictionary());
        }
    }

    public Task<bool> TryApplyAsync(LearningUpdate update, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_applied.Add(update.Id))
            {
                return Task.FromResult(false);
            }

            foreach (var (key, arm) in update.Arms)
            {
                _arms[key] = arm;
            }

            if (update.Selection is { } selection)
            {
                var key = (update.Tenant, update.Agent);
                var history = _history.TryGetValue(key, out var known) ? known : _history[key] = new LinkedList<Selection>();
                history.AddFirst(selection.Clone());
                while (history.Count > historyPerAgent)
                {
                    history.RemoveLast();
                }
            }

            if (update.Tally is { } tally)
            {
                _tallies[tally.Key] = tally.Value;
            }

            return Task.FromResult(true);
        }
    }

    public Task<IReadOnlyList<Selection>> HistoryAsync(string tenant, string agent, string taskType, int limit, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<Selection> selections = _history.TryGetValue((tenant, agent), out var history)
                ? [.. history.Where(s => taskType.Length == 0 || s.TaskType == taskType).Take(limit).Select(s => s.Clone())]
                : [];
            return Task.FromResult(selections);
        }
    }

    public Task PutExperimentAsync(Experiment experiment, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            RemoveExperiment(experiment.Tenant, experiment.Agent, experiment.Name);
            _experiments.Add(experiment.Clone());
            return Task.CompletedTask;
        }
    }

    public Task<bool> DeleteExperimentAsync(string tenant, string agent, string name, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult(RemoveExperiment(tenant, agent, name));
        }
    }

    private bool RemoveExperiment(string tenant, string agent, string name)
    {
        foreach (var key in _tallies.Keys.Where(k => k.Tenant == tenant && k.Agent == agent && k.Experiment == name).ToList())
        {
            _tallies.Remove(key);
        }

        return _experiments.RemoveAll(e => e.Tenant == tenant && e.Agent == agent && e.Name == name) > 0;
    }
}
