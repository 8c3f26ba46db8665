using Dapr.Actors;

namespace PersistentAgents.Agents.Dapr;

/// <summary>An agent's actor id is <c>{tenant}:{name}</c>; both parts are validated names without ':'.</summary>
public static class ActorIds
{
    public static ActorId Of(AgentId agent) => new($"{agent.Tenant}:{agent.Name}");

    public static AgentId AgentOf(ActorId id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var value = id.GetId();
        var separator = value.IndexOf(':', StringComparison.Ordinal);
        return separator > 0 ? new AgentId(value[..separator], value[(separator + 1)..]) : throw new ArgumentException($"actor id '{value}' is not tenant:name", nameof(id));
    }
}
