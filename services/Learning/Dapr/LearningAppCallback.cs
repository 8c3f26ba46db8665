using Dapr.AppCallback.Autogen.Grpc.v1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using PersistentAgents.Analytics;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Dapr;

/// <summary>
/// How the learning service, a gRPC app (app-protocol grpc), receives <c>interaction-completed</c> from its
/// sidecar (docs/architecture.md, 'Dapr facts'): the sidecar asks <c>ListTopicSubscriptions</c> once and then
/// delivers each CloudEvent to <c>OnTopicEvent</c>. Delivery is at least once; an outcome is applied once by
/// its interaction id, so a redelivered event is acknowledged and changes nothing. With analytics configured,
/// each outcome learned from is also written to the <paramref name="analytics"/> sink.
/// </summary>
public sealed class LearningAppCallback(ILearningApi learning, ILogger<LearningAppCallback> logger, IInteractionSink? analytics = null) : AppCallback.AppCallbackBase
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    public override Task<ListTopicSubscriptionsResponse> ListTopicSubscriptions(Empty request, ServerCallContext context)
    {
        var reply = new ListTopicSubscriptionsResponse();
        reply.Subscriptions.Add(new TopicSubscription { PubsubName = DaprComponents.PubSub, Topic = Topics.InteractionCompleted });
        return Task.FromResult(reply);
    }

    public override async Task<TopicEventResponse> OnTopicEvent(TopicEventRequest request, ServerCallContext context)
    {
        if (request.Topic != Topics.InteractionCompleted)
        {
            logger.LogWarning("Dropped event {Id}: topic {Topic} is not subscribed", request.Id, request.Topic);
            return Answer(TopicEventResponse.Types.TopicEventResponseStatus.Drop);
        }

        InteractionCompleted outcome;
        try
        {
            outcome = Parser.Parse<InteractionCompleted>(request.Data.ToStringUtf8());
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            logger.LogWarning("Dropped event {Id}: its data is not an InteractionCompleted ({Error})", request.Id, e.Message);
            return Answer(TopicEventResponse.Types.TopicEventResponseStatus.Drop);
        }

        if (ProblemOf(outcome) is { } problem)
        {
            logger.LogWarning("Dropped event {Id}: {Problem}", request.Id, problem);
            return Answer(TopicEventResponse.Types.TopicEventResponseStatus.Drop);
        }

        try
        {
            await learning.RecordOutcomeAsync(outcome, context.CancellationToken);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
        {
            logger.LogWarning("Dropped event {Id}: {Problem}", request.Id, e.Status.Detail);
            return Answer(TopicEventResponse.Types.TopicEventResponseStatus.Drop);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The state store may be back in a moment: the sidecar redelivers under the resiliency policy.
            logger.LogError(e, "Event {Id} will be retried", request.Id);
            return Answer(TopicEventResponse.Types.TopicEventResponseStatus.Retry);
        }

        await WriteAnalyticsAsync(request.Id, outcome, context.CancellationToken);
        return Answer(TopicEventResponse.Types.TopicEventResponseStatus.Success);
    }

    private async Task WriteAnalyticsAsync(string eventId, InteractionCompleted outcome, CancellationToken cancellationToken)
    {
        if (analytics is null)
        {
            return;
        }

        try
        {
            await analytics.WriteAsync(outcome, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Best effort: learning has the outcome and the episode remains the record, so a redelivery
            // for analytics' sake is not worth holding the event back.
            logger.LogError(e, "Event {Id} was learned from but not written to analytics", eventId);
        }
    }

    /// <summary>What makes an outcome unusable, naming the field; null when it is fine.</summary>
    public static string? ProblemOf(InteractionCompleted outcome) =>
        !InteractionIds.TryGetTimestamp(outcome.InteractionId, out _) ? "interactionId: is not an interaction id"
        : outcome.Agent.Length == 0 ? "agent: is required"
        : outcome.TaskType.Length == 0 ? "taskType: is required"
        : outcome.Attempts.Any(a => a.Arm is null || a.Arm.Provider.Length == 0 || a.Arm.Model.Length == 0) ? "attempts: every attempt names a provider and a model"
        : !double.IsFinite(outcome.Quality) || outcome.Quality is < 0 or > 1 ? "quality: must be from 0 to 1"
        : !double.IsFinite(outcome.CostUsd) || outcome.CostUsd < 0 ? "costUsd: must be 0 or more"
        : null;

    private static TopicEventResponse Answer(TopicEventResponse.Types.TopicEventResponseStatus status) => new() { Status = status };
}
