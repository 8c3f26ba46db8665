using Dapr.Actors;

namespace PersistentAgents.Agents.Dapr;

/// <summary>
/// The agent as a Dapr actor (docs/architecture.md, 'Services'): one instance per tenant and agent name, one
/// turn at a time. Messages cross as protobuf bytes so that the actor interface stays the contract's, not a
/// copy of it.
/// </summary>
public interface IPersistentAgent : IActor
{
    public const string ActorType = "PersistentAgent";

    /// <param name="request">A <c>CompleteRequest</c>.</param>
    /// <returns>An <c>AgentTurnResult</c>.</returns>
    Task<byte[]> CompleteAsync(byte[] request);

    /// <summary>
    /// Runs an <c>agent-tasks</c> event once per task id: a repeated id returns the first run's result without
    /// running it again.
    /// </summary>
    /// <param name="request">A <c>CompleteRequest</c>.</param>
    /// <returns>A <c>TaskRun</c>: the <c>AgentTaskResult</c> and whether it was already published.</returns>
    Task<byte[]> RunTaskAsync(string taskId, byte[] request);

    /// <summary>Notes that a task's result has been published, so a redelivery does not publish it again.</summary>
    Task MarkTaskPublishedAsync(string taskId);

    /// <returns>A <c>PurgeReply</c>.</returns>
    Task<byte[]> PurgeAsync();

    /// <returns>The agent's aggregate as JSON, or empty when it has had no interaction.</returns>
    Task<byte[]> GetAggregateAsync();
}
