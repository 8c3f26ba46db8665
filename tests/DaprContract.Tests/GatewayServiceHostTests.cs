using System.Text;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway;
using PersistentAgents.Gateway.Dapr;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The gateway running alone (distributed mode) with the sidecar double as its sidecar: keys from the secret
/// store, spend on gateway-state, provider-health on agent-pubsub, its API over gRPC.
/// </summary>
public sealed class GatewayServiceHostTests : IAsyncLifetime
{
    private const string Catalog = """
        simulated: auto
        providers:
          - name: sim-a
            kind: simulated
            models:
              - name: a
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.8
                simulation: { quality: 0.8, failureRate: 0, latencyMs: 1 }
        """;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pa-gateway-host", Guid.NewGuid().ToString("N"));
    private SidecarDouble _sidecar = null!;
    private WebApplication _host = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        var catalogPath = Path.Combine(_folder, "catalog.yaml");
        await File.WriteAllTextAsync(catalogPath, Catalog);
        _sidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _host = GatewayServiceHost.Build(
            ["--urls", "http://127.0.0.1:0", "--catalog", catalogPath, "--Budgets:DailyUsdByAgent:frugal", "1", "--Logging:LogLevel:Default", "Warning"],
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
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task A_budgeted_agents_spend_lands_on_gateway_state_and_the_catalog_is_served()
    {
        var gateway = new Contracts.V1.Gateway.GatewayClient(_channel);
        var request = new GatewayRequest { Tenant = "acme", Agent = "frugal", TaskType = "t", NoCache = true, Candidates = { new ArmRef { Provider = "sim-a", Model = "a" } } };
        request.Messages.Add(new ChatMessage { Role = "user", Content = "Summarise the quarterly numbers" });

        var reply = await gateway.CompleteAsync(request);
        var budget = await gateway.GetBudgetAsync(new BudgetRequest { Tenant = "acme", Agent = "frugal" });
        var models = await gateway.ListModelsAsync(new ListModelsRequest());

        Assert.True(reply.Success);
        Assert.True(reply.Simulated);
        var key = DaprSpendStore.KeyOf("acme", "frugal", DateOnly.FromDateTime(DateTime.UtcNow));
        var stored = double.Parse(Encoding.UTF8.GetString(_sidecar.StateValue(DaprComponents.GatewayState, key)!), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(reply.CostUsd, stored, precision: 12);
        Assert.Equal(1 - reply.CostUsd, budget.RemainingUsd, precision: 9);
        var save = _sidecar.StateCalls.Last(c => c.Store == DaprComponents.GatewayState && c.Method == "SaveState");
        Assert.Equal(("first-write", "604800"), (save.Concurrency, save.Metadata["ttlInSeconds"]));
        Assert.Equal("sim-a", Assert.Single(models.Models).Arm.Provider);
    }

    [Fact]
    public void Provider_keys_come_from_the_secret_store_once_per_name_and_a_missing_one_is_no_key()
    {
        _sidecar.AddSecret(DaprComponents.Secrets, "OPENAI_API_KEY", "sk-test");
        var secrets = new DaprSecretSource(_sidecar.Client);

        Assert.Equal("sk-test", secrets.GetSecret("OPENAI_API_KEY"));
        Assert.Equal("sk-test", secrets.GetSecret("OPENAI_API_KEY"));
        Assert.Null(secrets.GetSecret("ANTHROPIC_API_KEY"));
        Assert.Equal(2, _sidecar.Paths.Count(p => p.EndsWith("/GetSecret", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Events_go_to_agent_pubsub_as_protobuf_json_with_the_event_id_as_cloudevent_id()
    {
        var publisher = new ServiceHosting.DaprEventPublisher(_sidecar.Client);
        var change = new ProviderHealthChanged { Provider = "sim-a", Circuit = "open", Reason = "timeout" };

        await publisher.PublishAsync(Topics.ProviderHealth, "sim-a-open-1", change, CancellationToken.None);

        var published = Assert.Single(_sidecar.Published);
        Assert.Equal((DaprComponents.PubSub, Topics.ProviderHealth, "application/json"), (published.PubSub, published.Topic, published.ContentType));
        Assert.Equal("sim-a-open-1", published.Metadata["cloudevent.id"]);
        Assert.Equal(change, ProviderHealthChanged.Parser.ParseJson(Encoding.UTF8.GetString(published.Data)));
    }
}
