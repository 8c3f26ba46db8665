using Google.Protobuf;
using PersistentAgents.Contracts;

namespace PersistentAgents.Host;

/// <summary>
/// The embedded stand-in for <c>agent-pubsub</c>: delivers each event to the topic's subscribers before
/// the publish completes, so an event is handled before the turn that raised it is acknowledged.
/// Subscribers are idempotent by event id, as they must be on Dapr's at-least-once pub/sub.
/// </summary>
public sealed class InProcessEventBus : IEventPublisher
{
    private readonly Dictionary<string, List<Subscriber>> _subscribers = new(StringComparer.Ordinal);

    /// <param name="subscriber">Names the subscriber when it fails to handle an event.</param>
    public void Subscribe<TPayload>(string topic, string subscriber, Func<TPayload, string, CancellationToken, Task> handler)
        where TPayload : IMessage<TPayload>
    {
        if (!_subscribers.TryGetValue(topic, out var subscribers))
        {
            _subscribers[topic] = subscribers = [];
        }

        subscribers.Add(new Subscriber(subscriber, (payload, id, token) => handler((TPayload)payload, id, token)));
    }

    /// <summary>
    /// Hands the event to every subscriber, even after one fails, so that one failing subscriber does not
    /// starve the others; then fails with what failed, for the publisher to decide what that means for it.
    /// </summary>
    public async Task PublishAsync<TPayload>(string topic, string eventId, TPayload payload, CancellationToken cancellationToken)
        where TPayload : IMessage<TPayload>
    {
        if (!_subscribers.TryGetValue(topic, out var subscribers))
        {
            return;
        }

        var failed = new List<(string Subscriber, Exception Error)>();
        foreach (var subscriber in subscribers)
        {
            try
            {
                await subscriber.Handle(payload, eventId, cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                failed.Add((subscriber.Name, e));
            }
        }

        if (failed.Count > 0)
        {
            // AggregateException's message appends each inner message, so the publisher sees every reason.
            throw new AggregateException(
                $"{topic} event {eventId} failed in {string.Join(", ", failed.Select(f => f.Subscriber))}", failed.Select(f => f.Error));
        }
    }

    private sealed record Subscriber(string Name, Func<IMessage, string, CancellationToken, Task> Handle);
}
