using Google.Protobuf;

namespace PersistentAgents.Contracts;

/// <summary>Topic names on the <c>agent-pubsub</c> component (docs/architecture.md, 'Events').</summary>
public static class Topics
{
    public const string AgentTasks = "agent-tasks";
    public const string AgentTasksDeadLetter = "agent-tasks-deadletter";
    public const string AgentResults = "agent-results";
    public const string InteractionCompleted = "interaction-completed";
    public const string ProviderHealth = "provider-health";
    public const string LearningUpdated = "learning-updated";
}

/// <summary>
/// Publishes an event to a topic. <paramref name="eventId"/> becomes the CloudEvent id, the key that
/// subscribers use to ignore a redelivery.
/// </summary>
public interface IEventPublisher
{
    Task PublishAsync<TPayload>(string topic, string eventId, TPayload payload, CancellationToken cancellationToken)
        where TPayload : IMessage<TPayload>;
}
