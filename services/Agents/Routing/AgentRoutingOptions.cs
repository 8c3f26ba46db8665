namespace PersistentAgents.Agents.Routing;

/// <summary>Each agent's cost/quality policy (configuration section "Routing").</summary>
public sealed class AgentRoutingOptions
{
    /// <summary>The policy of agents not listed below; empty leaves it to the learning service's default.</summary>
    public string DefaultPolicy { get; set; } = "";

    /// <summary>Per agent name: "quality-first", "balanced", "cost-first" or λ as a number.</summary>
    public Dictionary<string, string> PolicyByAgent { get; set; } = [];

    public string PolicyFor(string agent) => PolicyByAgent.GetValueOrDefault(agent, DefaultPolicy);
}
