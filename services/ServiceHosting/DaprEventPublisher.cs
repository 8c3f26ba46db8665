using Dapr.Client;
using Google.Protobuf;
using PersistentAgents.Contracts;

namespace PersistentAgents.ServiceHosting;

/// <summary>
/// Publishes events to <c>agent-pubsub</c> through the sidecar, which wraps them in CloudEvents 1.0. The
/// payload is its protobuf JSON (the documented schema, docs/architecture.md, 'Events'), and the event id is
/// set through the <c>cloudevent.id</c> metadata so that subscribers can tell a redelivery from a new event.
/// </summary>
public sealed class DaprEventPublisher(DaprClient dapr, string pubSubName = DaprComponents.PubSub) : IEventPublisher
{
    public Task PublishAsync<TPayload>(string topic, string eventId, TPayload payload, CancellationToken cancellationToken)
        where TPayload : IMessage<TPayload> =>
        dapr.PublishByteEventAsync(
            pubSubName,
            topic,
            System.Text.Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(payload)),
            "application/json",
            new Dictionary<string, string> { ["cloudevent.id"] = eventId },
            cancellationToken);
}
