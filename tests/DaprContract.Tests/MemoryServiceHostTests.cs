using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Dapr;
using GrpcHealth = Grpc.Health.V1;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The memory service running alone (distributed mode) on its own host, with the sidecar double as its Dapr
/// sidecar: its gRPC API in, and every tier on its Dapr component out.
/// </summary>
[Collection(PgliteTests.Name)]
public sealed class MemoryServiceHostTests(PgliteDatabase postgres) : IAsyncLifetime
{
    private readonly AgentRef _agent = new() { Tenant = $"t{Guid.NewGuid():N}", Agent = "email-router" };
    private SidecarDouble _sidecar = null!;
    private WebApplication _host = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _sidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _sidecar.AddBinding(DaprComponents.SemanticMemory, postgres.Binding);
        _sidecar.AddBinding(DaprComponents.EpisodicMemory, new BlobBinding(BlobFlavour.S3));
        // The hashed embedder: these tests recall by shared words, with nothing to load.
        _host = MemoryServiceHost.Build(
            ["--urls", "http://127.0.0.1:0", "--Memory:EpisodeBinding", "s3", "--Memory:Embeddings:Kind", "hashed", "--Logging:LogLevel:Default", "Warning"],
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

    [PgliteFact]
    public async Task Every_tier_goes_through_its_dapr_component_and_comes_back_over_grpc()
    {
        var memory = new Contracts.V1.Memory.MemoryClient(_channel);
        var interactionId = InteractionIds.New(DateTimeOffset.UtcNow);
        var at = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);

        await memory.AppendTurnAsync(new AppendTurnRequest { Agent = _agent, SessionId = "s-1", Turn = new Turn { Prompt = "Where is invoice 4471?", Reply = "With billing", InteractionId = interactionId, At = at } });
        await memory.AppendEpisodeAsync(new AppendEpisodeRequest { Agent = _agent, InteractionId = interactionId, At = at, Json = """{"prompt":"Where is invoice 4471?"}""" });
        await memory.RememberAsync(new RememberRequest { Agent = _agent, Id = interactionId, Text = "Invoice 4471 is with the billing team", TaskType = "email_routing", Success = true });

        var working = await memory.GetWorkingMemoryAsync(new GetWorkingMemoryRequest { Agent = _agent, SessionId = "s-1", MaxTurns = 10 });
        var episode = await memory.GetEpisodeAsync(new GetEpisodeRequest { Agent = _agent, InteractionId = interactionId });
        var recalled = await memory.RecallAsync(new RecallRequest { Agent = _agent, Query = "invoice 4471 billing", TopK = 3, TokenBudget = 500 });

        Assert.Equal("With billing", Assert.Single(working.Turns).Reply);
        Assert.Equal("""{"prompt":"Where is invoice 4471?"}""", episode.Json);
        Assert.Equal(interactionId, Assert.Single(recalled.Memories).Id);
        Assert.Contains(_sidecar.StateCalls, c => c.Store == DaprComponents.WorkingMemory && c.Method == "SaveState");
        Assert.Contains(_sidecar.BindingCalls, c => c.Name == DaprComponents.EpisodicMemory && c.Operation == "create");
        Assert.Contains(_sidecar.BindingCalls, c => c.Name == DaprComponents.SemanticMemory && c.Operation == "query");
    }

    [PgliteFact]
    public async Task It_answers_health_checks_and_refuses_bad_input_with_the_field()
    {
        var healthClient = new GrpcHealth.Health.HealthClient(_channel);
        var health = await healthClient.CheckAsync(new GrpcHealth.HealthCheckRequest());
        for (var i = 0; i < 50 && health.Status != GrpcHealth.HealthCheckResponse.Types.ServingStatus.Serving; i++)
        {
            await Task.Delay(100);
            health = await healthClient.CheckAsync(new GrpcHealth.HealthCheckRequest());
        }

        var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
            await new Contracts.V1.Memory.MemoryClient(_channel).GetEpisodeAsync(new GetEpisodeRequest { Agent = _agent, InteractionId = "../x" }));

        Assert.Equal(GrpcHealth.HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith("interactionId:", error.Status.Detail, StringComparison.Ordinal);
    }
}
