using Dapr.AppCallback.Autogen.Grpc.v1;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Learning;
using EventStatus = Dapr.AppCallback.Autogen.Grpc.v1.TopicEventResponse.Types.TopicEventResponseStatus;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The learning service running alone (distributed mode) with the sidecar double as its sidecar: events
/// delivered the way a sidecar delivers them to a gRPC app, its API over gRPC, its state in learning-state.
/// </summary>
public sealed class LearningServiceHostTests : IAsyncLifetime
{
    private SidecarDouble _sidecar = null!;
    private WebApplication _host = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _sidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _host = LearningServiceHost.Build(
            ["--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default", "Warning"],
            services => services.AddSingleton(_sidecar.Client));
        await _host.StartAsync();
        _channel = GrpcChannel.ForAddress(_host.ListeningAddresses().Single());
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _host.StopAsync();
        await _host.DisposeAsync();
        await _sidecar.DisposeAsync();
    }

    private static TopicEventRequest Delivery(string id, string json, string topic = Topics.InteractionCompleted) => new()
    {
        Id = id,
        Source = "agents",
        Type = "com.dapr.event.sent",
        SpecVersion = "1.0",
        DataContentType = "application/json",
        Topic = topic,
        PubsubName = DaprComponents.PubSub,
        Data = ByteString.CopyFromUtf8(json),
    };

    private static InteractionCompleted Outcome(string interactionId) => new()
    {
        InteractionId = interactionId,
        Tenant = "acme",
        Agent = "router",
        TaskType = "classify",
        Success = true,
        Quality = 0.9,
        CostUsd = 0.001,
        ReferenceCostUsd = 0.01,
        Context = "simple",
        Attempts = { new AttemptOutcome { Arm = new ArmRef { Provider = "sim", Model = "m" }, Success = true } },
    };

    [Fact]
    public async Task It_subscribes_to_interaction_completed_and_learns_each_event_once_however_often_it_is_delivered()
    {
        var callback = new AppCallbackCaller(_channel);
        var subscriptions = await callback.ListTopicSubscriptionsAsync(new Google.Protobuf.WellKnownTypes.Empty());
        var id = InteractionIds.New(DateTimeOffset.UtcNow);
        var json = JsonFormatter.Default.Format(Outcome(id));

        var first = await callback.OnTopicEventAsync(Delivery(id, json));
        var redelivered = await callback.OnTopicEventAsync(Delivery(id, json));
        var scores = await new Contracts.V1.Learning.LearningClient(_channel).GetScoresAsync(new GetScoresRequest { Tenant = "acme", Agent = "router" });

        var subscription = Assert.Single(subscriptions.Subscriptions);
        Assert.Equal((DaprComponents.PubSub, Topics.InteractionCompleted), (subscription.PubsubName, subscription.Topic));
        Assert.Equal(EventStatus.Success, first.Status);
        Assert.Equal(EventStatus.Success, redelivered.Status);
        Assert.Equal(1, Assert.Single(scores.Scores).Pulls);
        var updated = Assert.Single(_sidecar.Published);
        Assert.Equal((DaprComponents.PubSub, Topics.LearningUpdated, $"learning-{id}"), (updated.PubSub, updated.Topic, updated.Metadata["cloudevent.id"]));
        Assert.Equal(1, LearningUpdated.Parser.ParseJson(System.Text.Encoding.UTF8.GetString(updated.Data)).Scores.Single().Pulls);
        Assert.Contains(DaprLearningStateKey("acme", "router"), _sidecar.StateKeys(DaprComponents.LearningState));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"interactionId":"../x","agent":"router","taskType":"t"}""")]
    [InlineData("""{"interactionId":"__ID__","agent":"","taskType":"t"}""")]
    [InlineData("""{"interactionId":"__ID__","agent":"router","taskType":"t","quality":7}""")]
    public async Task A_malformed_event_is_dropped_and_changes_nothing(string data)
    {
        var callback = new AppCallbackCaller(_channel);

        var answer = await callback.OnTopicEventAsync(Delivery("e-1", data.Replace("__ID__", InteractionIds.New(DateTimeOffset.UtcNow), StringComparison.Ordinal)));

        Assert.Equal(EventStatus.Drop, answer.Status);
        Assert.DoesNotContain(_sidecar.StateKeys(DaprComponents.LearningState), k => k != PersistentAgents.Learning.Dapr.DaprLearningStateStore.IndexKey);
    }

    [Fact]
    public async Task Routing_is_served_over_grpc_from_the_state_on_the_sidecar()
    {
        var learning = new Contracts.V1.Learning.LearningClient(_channel);
        var rank = new RankRequest { Tenant = "acme", Agent = "router", TaskType = "classify", EstimatedInputTokens = 100, Policy = "balanced" };
        rank.Candidates.Add(new CandidateArm { Arm = new ArmRef { Provider = "sim", Model = "m" }, InputPricePerMtok = 1, OutputPricePerMtok = 2, PriorQuality = 0.8, Available = true });

        var reply = await learning.RankAsync(rank);

        Assert.Equal("m", Assert.Single(reply.Ranked).Model);
        Assert.Equal(CostPolicy.Balanced, reply.CostWeight);
    }

    private static string DaprLearningStateKey(string tenant, string agent) => PersistentAgents.Learning.Dapr.DaprLearningStateStore.AgentKey(tenant, agent);
}
