namespace PersistentAgents.Agents;

/// <summary>A named agent in its tenant's namespace.</summary>
public readonly record struct AgentId(string Tenant, string Name)
{
    public override string ToString() => $"{Tenant}/{Name}";
}
