using Dapr.Actors;

namespace PersistentAgents.Agents.Dapr;

/// <summary>
/// The agent as a Dapr actor (design §3): one instance per tenant and agent name, one turn at a time.
/// Messages cross as protobuf bytes so that the actor interface stays the contract's, not a copy of it.
/// </summary>
public interface IPersistentAgent : IActor
{
    public const string ActorType = "PersistentAgent";

    /// <param name="request">A <c>CompleteRequest</c>.</param>
    /// <returns>An <c>AgentTurnResult</c>.</returns>
    Task<byte[]> CompleteAsync(byte[] request);

    /// <returns>A <c>PurgeReply</c>.</returns>
    Task<byte[]> PurgeAsync();

    /// <returns>The agent's aggregate as JSON, or empty when it has had no interaction.</returns>
    Task<byte[]> GetAggregateAsync();
}
