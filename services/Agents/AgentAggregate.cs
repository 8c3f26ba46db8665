namespace PersistentAgents.Agents;

/// <summary>
/// An agent's aggregate statistics, kept in its own state and updated once per turn. Serialised as JSON,
/// so fields are only ever added.
/// </summary>
public sealed record AgentAggregate
{
    public long Interactions { get; init; }

    public long Successes { get; init; }

    public long Failures { get; init; }

    public double CostUsd { get; init; }

    public long TokensIn { get; init; }

    public long TokensOut { get; init; }

    public double TotalLatencyMs { get; init; }

    public DateTimeOffset? LastActivity { get; init; }

    /// <summary>
    /// The last interaction counted here. Turns of an agent are serial and interaction ids grow with time, so
    /// an episode with a later id was stored by a turn that never reached its stats, and was never acknowledged.
    /// </summary>
    public string LastInteractionId { get; init; } = "";

    public Dictionary<string, TaskTypeAggregate> TaskTypes { get; init; } = [];
}

public sealed record TaskTypeAggregate
{
    public long Interactions { get; set; }

    public long Successes { get; set; }

    public long Failures { get; set; }

    public double CostUsd { get; set; }

    /// <summary>Keyed by "provider/model".</summary>
    public Dictionary<string, ArmAggregate> Arms { get; init; } = [];
}

/// <summary>Every call made to one (provider, model): the ones that failed over count too.</summary>
public sealed record ArmAggregate
{
    public string Provider { get; init; } = "";

    public string Model { get; init; } = "";

    public long Calls { get; set; }

    public long Successes { get; set; }

    public double QualitySum { get; set; }

    public double CostUsd { get; set; }
}

/// <summary>The agent's own state: its aggregate statistics, one document per agent.</summary>
public interface IAgentStateStore
{
    Task<AgentAggregate?> LoadAsync(AgentId agent, CancellationToken cancellationToken);

    Task SaveAsync(AgentId agent, AgentAggregate aggregate, CancellationToken cancellationToken);

    Task DeleteAsync(AgentId agent, CancellationToken cancellationToken);
}
