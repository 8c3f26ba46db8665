using Google.Protobuf;
using PersistentAgents.Contracts;

namespace PersistentAgents.Host;

/// <summary>
/// The embedded stand-in for <c>agent-pubsub</c>: delivers each event to the topic's subscribers before
/// the publish completes, so an event is handled before the turn that raised it is acknowledged.
/// Subscribers are idempotent by event id, as they must be on Dapr's at-least-once pub/sub.
/// </summary>
public sealed class InProcessEventBus(ILogger<InProcessEventBus> logger) : IEventPublisher
{
    private readonly Dictionary<string, List<Func<IMessage, string, CancellationToken, Task>>> _subscribers = new(StringComparer.Ordinal);

    public void Subscribe<TPayload>(string topic, Func<TPayload, string, CancellationToken, Task> handler)
        where TPayload : IMessage<TPayload>
    {
        if (!_subscribers.TryGetValue(topic, out var handlers))
        {
            _subscribers[topic] = handlers = [];
        }

        handlers.Add((payload, id, token) => handler((TPayload)payload, id, token));
    }

    public async Task PublishAsync<TPayload>(string topic, string eventId, TPayload payload, CancellationToken cancellationToken)
        where TPayload : IMessage<TPayload>
    {
        if (!_subscribers.TryGetValue(topic, out var handlers))
        {
            return;
        }

        foreach (var handler in handlers)
        {
            try
            {
                await handler(payload, eventId, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // One failing subscriber must not fail the publisher's turn, which is already stored.
                logger.LogError(e, "Subscriber of {Topic} failed on event {EventId}", topic, eventId);
            }
        }
    }
}
