using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Agents.Dapr;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Learning;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The agents service's clients of the other services, calling through their own sidecar: the learning
/// service on its own host behind its own sidecar, reached by app id as daprd proxies gRPC.
/// </summary>
public sealed class ServiceInvocationTests : IAsyncLifetime, IDisposable
{
    private SidecarDouble _agentsSidecar = null!;
    private SidecarDouble _learningSidecar = null!;
    private WebApplication _learning = null!;
    private DaprServiceInvocation _invocation = null!;

    public async Task InitializeAsync()
    {
        _agentsSidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _learningSidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _learning = LearningServiceHost.Build(
            ["--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default", "Warning"],
            services => services.AddSingleton(_learningSidecar.Client));
        await _learning.StartAsync();
        _agentsSidecar.RegisterApp(DaprComponents.Apps.Learning, _learning.ListeningAddresses().Single());
        _invocation = new DaprServiceInvocation(new Uri($"http://127.0.0.1:{_agentsSidecar.GrpcPort}"), TimeSpan.FromSeconds(10));
    }

    public void Dispose() => _invocation?.Dispose();

    public async Task DisposeAsync()
    {
        await _learning.StopAsync();
        await _learning.DisposeAsync();
        await _learningSidecar.DisposeAsync();
        await _agentsSidecar.DisposeAsync();
    }

    [Fact]
    public async Task Calls_go_to_the_callers_sidecar_with_the_target_app_id_and_come_back_with_the_reply()
    {
        var learning = new LearningApiClient(_invocation);
        var rank = new RankRequest { Tenant = "acme", Agent = "router", TaskType = "classify", EstimatedInputTokens = 10 };
        rank.Candidates.Add(new CandidateArm { Arm = new ArmRef { Provider = "sim", Model = "m" }, InputPricePerMtok = 1, OutputPricePerMtok = 1, PriorQuality = 0.8, Available = true });

        var reply = await learning.RankAsync(rank, CancellationToken.None);

        Assert.Equal("m", Assert.Single(reply.Ranked).Model);
        Assert.Equal((DaprComponents.Apps.Learning, "/persistent_agents.v1.Learning/Rank"), Assert.Single(_agentsSidecar.Invocations));
    }

    [Fact]
    public async Task A_status_from_the_target_comes_back_with_its_message()
    {
        var learning = new LearningApiClient(_invocation);

        var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => learning.RankAsync(new RankRequest { Agent = "router", Policy = "stingy" }, CancellationToken.None));

        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith("policy:", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_callers_cancellation_reaches_the_call()
    {
        var learning = new LearningApiClient(_invocation);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => learning.GetScoresAsync(new GetScoresRequest { Agent = "router" }, cancelled.Token));

        Assert.Equal(Grpc.Core.StatusCode.Cancelled, error.StatusCode);
    }
}
