using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents;

/// <summary>
/// Delivers a turn to an agent, which takes one turn at a time. Embedded: a per-agent gate in process;
/// distributed: the agent's Dapr actor.
/// </summary>
public interface IAgentInvoker
{
    /// <param name="onDelta">When given, the reply is streamed to it as it is generated.</param>
    Task<CompleteReply> CompleteAsync(AgentId agent, ValidCompleteRequest request, Func<string, CancellationToken, ValueTask>? onDelta, CancellationToken cancellationToken);

    /// <summary>Forgets the agent, as a turn of its own so that it never interleaves with a completion.</summary>
    Task<PurgeReply> PurgeAsync(AgentId agent, CancellationToken cancellationToken);

    /// <summary>The agent's aggregate statistics; null when it has had no interaction.</summary>
    Task<AgentAggregate?> LoadAsync(AgentId agent, CancellationToken cancellationToken);
}
