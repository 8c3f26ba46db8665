using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Agents;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Learning;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// Dapr's app API token: with one configured, what only the sidecar calls refuses calls without it (the
/// sidecar sends it as <c>dapr-api-token</c>), while health stays open to probes.
/// </summary>
public sealed class AppTokenTests : IAsyncLifetime
{
    private const string Token = "app-token-for-tests-0001";
    private SidecarDouble _sidecar = null!;

    public async Task InitializeAsync() => _sidecar = await SidecarDouble.StartAsync(TimeProvider.System);

    public async Task DisposeAsync() => await _sidecar.DisposeAsync();

    [Fact]
    public async Task A_grpc_service_refuses_calls_without_the_app_token_and_health_stays_open()
    {
        await using var host = LearningServiceHost.Build(
            ["--urls", "http://127.0.0.1:0", "--Dapr:AppApiToken", Token, "--Logging:LogLevel:Default", "Warning"],
            services => services.AddSingleton(_sidecar.Client));
        await host.StartAsync();
        using var channel = GrpcChannel.ForAddress(host.ListeningAddresses().Single());
        var learning = new Contracts.V1.Learning.LearningClient(channel);
        var request = new GetScoresRequest { Tenant = "default", Agent = "inbox" };

        foreach (var token in new[] { null, "wrong-token" })
        {
            var headers = token is null ? [] : new Metadata { { "dapr-api-token", token } };
            var refused = await Assert.ThrowsAsync<RpcException>(() => learning.GetScoresAsync(request, headers).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        }

        var scores = await learning.GetScoresAsync(request, new Metadata { { "dapr-api-token", Token } });
        Assert.Empty(scores.Scores);
        var health = new Grpc.Health.V1.Health.HealthClient(channel);
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
        await host.StopAsync();
    }

    [Fact]
    public async Task The_agents_service_refuses_sidecar_routes_without_the_app_token()
    {
        await using var host = AgentsServiceHost.Build(
            [
                "--urls", "http://127.0.0.1:0", "--grpc-urls", "http://127.0.0.1:0", "--Dapr:AppApiToken", Token,
                "--Dapr:GrpcEndpoint", $"http://127.0.0.1:{_sidecar.GrpcPort}", "--Dapr:HttpEndpoint", $"http://127.0.0.1:{_sidecar.HttpPort}",
                "--Logging:LogLevel:Default", "Warning",
            ],
            services => services.AddSingleton(_sidecar.Client));
        await host.StartAsync();
        using var http = new HttpClient { BaseAddress = host.ListeningAddresses()[0] };

        using (var refused = await http.GetAsync("/dapr/subscribe"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        using (var refusedActor = await http.GetAsync("/dapr/config"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refusedActor.StatusCode);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/dapr/subscribe");
        request.Headers.Add("dapr-api-token", Token);
        using var accepted = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        using var healthz = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, healthz.StatusCode);
        await host.StopAsync();
    }
}
