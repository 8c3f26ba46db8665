namespace PersistentAgents.Learning;

/// <summary>
/// The arms of the agents in memory, grouped so that an outcome or a ranking touches its own group only,
/// and ordered by when each agent was last used so that the least recently used can be let go.
/// </summary>
internal sealed class ArmTable
{
    private readonly Dictionary<(string Tenant, string Agent), ResidentAgent> _agents = [];

    // Most recently used first.
    private readonly LinkedList<(string Tenant, string Agent)> _recency = [];

    public int ResidentAgents => _agents.Count;

    public IEnumerable<KeyValuePair<ArmKey, ArmState>> All => _agents.Values.SelectMany(agent => agent.Groups.Values).SelectMany(group => group);

    public ArmState this[ArmKey key]
    {
        set
        {
            var groups = AgentOf(key.Tenant, key.Agent).Groups;
            var group = groups.TryGetValue(key.Group, out var known) ? known : groups[key.Group] = [];
            group[key] = value;
        }
    }

    /// <summary>True, marking the agent used, when its arms are in memory.</summary>
    public bool Touch(string tenant, string agent)
    {
        if (!_agents.TryGetValue((tenant, agent), out var resident))
        {
            return false;
        }

        _recency.Remove(resident.Recency);
        _recency.AddFirst(resident.Recency);
        return true;
    }

    /// <summary>Puts a loaded agent's arms in memory as the most recently used.</summary>
    public void Add(string tenant, string agent, IEnumerable<KeyValuePair<ArmKey, ArmState>> arms)
    {
        AgentOf(tenant, agent);
        foreach (var (key, arm) in arms)
        {
            this[key] = arm;
        }
    }

    /// <summary>
    /// Lets go of the least recently used agents beyond <paramref name="resident"/>; their arms are in the store.
    /// An agent <paramref name="inUse"/> stays: work on it between its reads and its writes would otherwise write
    /// back a partial set of arms.
    /// </summary>
    public void KeepAtMost(int resident, Func<string, string, bool> inUse)
    {
        var candidate = _recency.Last;
        while (_agents.Count > resident && candidate is not null)
        {
            var older = candidate.Previous;
            if (!inUse(candidate.Value.Tenant, candidate.Value.Agent))
            {
                _recency.Remove(candidate);
                _agents.Remove(candidate.Value);
            }

            candidate = older;
        }
    }

    public ArmState? Find(ArmKey key) =>
        _agents.TryGetValue((key.Tenant, key.Agent), out var agent) && agent.Groups.TryGetValue(key.Group, out var group) ? group.GetValueOrDefault(key) : null;

    public IEnumerable<KeyValuePair<ArmKey, ArmState>> InGroup(GroupKey group) =>
        _agents.TryGetValue((group.Tenant, group.Agent), out var agent) && agent.Groups.TryGetValue(group, out var arms) ? arms : [];

    public IEnumerable<KeyValuePair<ArmKey, ArmState>> OfAgent(string tenant, string agent) =>
        _agents.TryGetValue((tenant, agent), out var resident) ? resident.Groups.Values.SelectMany(group => group) : [];

    private ResidentAgent AgentOf(string tenant, string agent)
    {
        if (!_agents.TryGetValue((tenant, agent), out var resident))
        {
            resident = new ResidentAgent(_recency.AddFirst((tenant, agent)), []);
            _agents[(tenant, agent)] = resident;
        }

        return resident;
    }

    private sealed record ResidentAgent(LinkedListNode<(string Tenant, string Agent)> Recency, Dictionary<GroupKey, Dictionary<ArmKey, ArmState>> Groups);
}
