namespace PersistentAgents.Learning;

/// <summary>The arms in memory, grouped so that an outcome or a ranking touches its own group only.</summary>
internal sealed class ArmTable
{
    private readonly Dictionary<GroupKey, Dictionary<ArmKey, ArmState>> _groups = [];

    public ArmTable(IEnumerable<KeyValuePair<ArmKey, ArmState>> arms)
    {
        foreach (var (key, arm) in arms)
        {
            this[key] = arm;
        }
    }

    public IEnumerable<KeyValuePair<ArmKey, ArmState>> All => _groups.Values.SelectMany(group => group);

    public ArmState this[ArmKey key]
    {
        set
        {
            var group = _groups.TryGetValue(key.Group, out var known) ? known : _groups[key.Group] = [];
            group[key] = value;
        }
    }

    public ArmState? Find(ArmKey key) => _groups.TryGetValue(key.Group, out var group) ? group.GetValueOrDefault(key) : null;

    public IEnumerable<KeyValuePair<ArmKey, ArmState>> InGroup(GroupKey group) =>
        _groups.TryGetValue(group, out var arms) ? arms : [];

    public IEnumerable<KeyValuePair<ArmKey, ArmState>> OfAgent(string tenant, string agent) =>
        _groups.Where(g => g.Key.Tenant == tenant && g.Key.Agent == agent).SelectMany(g => g.Value);
}
