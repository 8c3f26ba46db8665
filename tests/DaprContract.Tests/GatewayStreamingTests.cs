using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Agents.Dapr;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The gateway's CompleteStream called by the agents service's client through its sidecar, which proxies the
/// server stream to the gateway's app as daprd does: the reply arrives piece by piece, not as one block.
/// </summary>
public sealed class GatewayStreamingTests : IAsyncLifetime, IDisposable
{
    // writer: about 25 words spread over 800 ms, a delta every 30 ms or so; long: the same over 2.5 s;
    // sluggish: a delta every 2 s or more; breaking: its stream breaks after some words.
    private const string Catalog = """
        simulated: always
        providers:
          - name: sim-slow
            kind: simulated
            models:
              - name: writer
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.8
                simulation: { quality: 0.8, failureRate: 0, latencyMs: 800 }
              - name: sluggish
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.8
                simulation: { quality: 0.8, failureRate: 0, latencyMs: 60000 }
              - name: long
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.8
                simulation: { quality: 0.8, failureRate: 0, latencyMs: 2500 }
              - name: breaking
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.8
                simulation: { quality: 0.8, failureRate: 0, latencyMs: 100, midStreamFailureRate: 1 }
        """;

    private const string Prompt = "Summarise the quarterly numbers of every region for the board in plain words please";

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pa-gateway-stream", Guid.NewGuid().ToString("N"));
    private SidecarDouble _agentsSidecar = null!;
    private SidecarDouble _gatewaySidecar = null!;
    private WebApplication _gateway = null!;
    private DaprServiceInvocation _invocation = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        var catalogPath = Path.Combine(_folder, "catalog.yaml");
        await File.WriteAllTextAsync(catalogPath, Catalog);
        _agentsSidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _gatewaySidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _gateway = GatewayServiceHost.Build(
            ["--urls", "http://127.0.0.1:0", "--catalog", catalogPath, "--Logging:LogLevel:Default", "Warning"],
            services => services.AddSingleton(_gatewaySidecar.Client));
        await _gateway.StartAsync();
        _agentsSidecar.RegisterApp(DaprComponents.Apps.Gateway, _gateway.ListeningAddresses().Single());
        _invocation = new DaprServiceInvocation(new Uri($"http://127.0.0.1:{_agentsSidecar.GrpcPort}"), TimeSpan.FromSeconds(10));
    }

    public void Dispose() => _invocation?.Dispose();

    public async Task DisposeAsync()
    {
        await _gateway.StopAsync();
        await _gateway.DisposeAsync();
        await _gatewaySidecar.DisposeAsync();
        await _agentsSidecar.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private static GatewayRequest Request(string model = "writer") => new()
    {
        Tenant = "acme",
        Agent = "writer",
        TaskType = "summary",
        NoCache = true,
        Candidates = { new ArmRef { Provider = "sim-slow", Model = model } },
        Messages = { new ChatMessage { Role = "user", Content = Prompt } },
    };

    [Fact]
    public async Task A_streamed_call_arrives_through_the_sidecar_in_several_pieces_in_order_then_the_final_reply()
    {
        var gateway = new GatewayApiClient(_invocation);
        var pieces = new List<(GatewayDelta Delta, TimeSpan At)>();
        var clock = Stopwatch.StartNew();

        var reply = await gateway.CompleteStreamingAsync(Request(), (delta, _) =>
        {
            pieces.Add((delta, clock.Elapsed));
            return ValueTask.CompletedTask;
        }, CancellationToken.None);
        var ended = clock.Elapsed;

        Assert.True(reply.Success, reply.ToString());
        Assert.True(pieces.Count >= 10, $"{pieces.Count} pieces");
        Assert.Equal(reply.Text, string.Concat(pieces.Select(p => p.Delta.Text)));
        Assert.Equal(("sim-slow", "writer"), (pieces[0].Delta.Arm.Provider, pieces[0].Delta.Arm.Model));
        Assert.True(pieces[0].Delta.Simulated);
        // Forwarded as written: the first piece arrives well before the reply ends, not with it.
        Assert.True(ended - pieces[0].At > TimeSpan.FromMilliseconds(400), $"first piece at {pieces[0].At.TotalMilliseconds} ms, end at {ended.TotalMilliseconds} ms");
        Assert.Equal((DaprComponents.Apps.Gateway, "/persistent_agents.v1.Gateway/CompleteStream"), Assert.Single(_agentsSidecar.Invocations));
    }

    [Fact]
    public async Task A_stream_that_breaks_after_text_was_sent_ends_with_a_failed_final_reply_naming_the_break()
    {
        var pieces = new List<string>();

        var reply = await new GatewayApiClient(_invocation).CompleteStreamingAsync(Request("breaking"), (delta, _) =>
        {
            pieces.Add(delta.Text);
            return ValueTask.CompletedTask;
        }, CancellationToken.None);

        Assert.False(reply.Success);
        Assert.NotEmpty(pieces);
        Assert.Contains("sim-slow/breaking broke after", reply.StreamError, StringComparison.Ordinal);
        // Not retried once text was out: a retry would send the caller a second beginning.
        Assert.Single(reply.Attempts);
    }

    [Fact]
    public async Task A_caller_that_goes_away_cancels_the_stream()
    {
        var gateway = new GatewayApiClient(_invocation);
        using var leaving = new CancellationTokenSource();
        var pieces = 0;
        var left = Stopwatch.StartNew();

        var error = await Assert.ThrowsAnyAsync<Exception>(() => gateway.CompleteStreamingAsync(Request("long"), async (_, _) =>
        {
            if (++pieces == 2)
            {
                await leaving.CancelAsync();
                left.Restart();
            }
        }, leaving.Token));

        Assert.True(error is OperationCanceledException || error is Grpc.Core.RpcException { StatusCode: Grpc.Core.StatusCode.Cancelled }, error.ToString());
        Assert.Equal(2, pieces);
        // Ended there, not after the rest of the 2.5 s stream.
        Assert.True(left.Elapsed < TimeSpan.FromSeconds(1), $"ended {left.Elapsed.TotalMilliseconds} ms after the caller left");
    }

    [Fact]
    public async Task A_stream_longer_than_the_call_timeout_is_not_cut_while_pieces_keep_coming()
    {
        using var shortCalls = new DaprServiceInvocation(new Uri($"http://127.0.0.1:{_agentsSidecar.GrpcPort}"), TimeSpan.FromSeconds(1));
        var pieces = 0;

        var reply = await new GatewayApiClient(shortCalls).CompleteStreamingAsync(Request("long"), (_, _) =>
        {
            pieces++;
            return ValueTask.CompletedTask;
        }, CancellationToken.None);

        Assert.True(reply.Success, reply.ToString());
        Assert.True(reply.LatencyMs > 1500, $"the stream took {reply.LatencyMs} ms");
        Assert.True(pieces >= 10, $"{pieces} pieces");
    }

    [Fact]
    public async Task A_stream_that_sends_nothing_for_the_call_timeout_ends_as_deadline_exceeded()
    {
        using var shortCalls = new DaprServiceInvocation(new Uri($"http://127.0.0.1:{_agentsSidecar.GrpcPort}"), TimeSpan.FromSeconds(1));
        var waited = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() =>
            new GatewayApiClient(shortCalls).CompleteStreamingAsync(Request("sluggish"), (_, _) => ValueTask.CompletedTask, CancellationToken.None));

        Assert.Equal(Grpc.Core.StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.StartsWith("the gateway's stream sent nothing for 1 s", error.Status.Detail, StringComparison.Ordinal);
        Assert.InRange(waited.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3));
    }
}
