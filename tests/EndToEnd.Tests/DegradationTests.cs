using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text.Json.Nodes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Agents;
using PersistentAgents.Agents.Routing;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;
using AgentsClient = PersistentAgents.Contracts.V1.Agents.AgentsClient;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// Graceful degradation (docs/reliability.md): each backend of a turn is broken on demand, the turn is made
/// over REST and gRPC, and then the backend is healed. A turn does without what it can and says so in
/// <c>degraded</c>; what it cannot do without (the catalog, the provider call, the episode and the statistics)
/// refuses it with UNAVAILABLE, and nothing refused is acknowledged.
/// </summary>
public sealed class DegradationTests : IAsyncLifetime, IDisposable
{
    private const string RelatedPrompt = "The supplier Acme always invoices in euros and pays within thirty days";

    private readonly FaultSwitch _faults = new();
    private readonly ConcurrentBag<Activity> _turns = [];
    private readonly ActivityListener _listener;
    private TestHost _host = null!;

    public DegradationTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == AgentsTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { if (a.OperationName == "agent.complete") { _turns.Add(a); } },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    private AgentsClient Grpc => new(_host.Grpc);

    public async Task InitializeAsync() => _host = await TestHost.StartAsync(
        TestHost.NewDataDir(), TestCatalogs.Simulated(), _faults.Inject, "--Resilience:MaxRetries", "0", "--Budgets:DailyUsdByAgent:pauper", "0.0005");

    public async Task DisposeAsync() => await _host.DisposeAsync();

    public void Dispose() => _listener.Dispose();

    [Fact]
    public async Task Memory_reads_down_the_agent_answers_without_recall_and_says_so_then_recalls_again_once_healed()
    {
        Assert.Equal(200, (await _host.CompleteAsync("forgetful", new { prompt = RelatedPrompt, sessionId = "s" })).Status);
        _faults.Break<IMemoryApi>(nameof(IMemoryApi.GetWorkingMemoryAsync), new RpcException(new Status(StatusCode.Unavailable, "memory sidecar unreachable")));
        _faults.Break<IMemoryApi>(nameof(IMemoryApi.RecallAsync), new IOException("vector index file is gone"));

        var (status, reply) = await _host.CompleteAsync("forgetful", new { prompt = RelatedPrompt, sessionId = "s" });

        Assert.Equal(200, status);
        Assert.Equal(
            ["memory: working memory unavailable (Unavailable: memory sidecar unreachable)", "memory: recall unavailable (vector index file is gone)"],
            Strings(reply["degraded"]));
        Assert.Empty(reply["memoryIds"]!.AsArray());
        var interactionId = reply["interactionId"]!.GetValue<string>();
        var episode = Assert.Single(_host.Episodes("forgetful"), e => e["interactionId"]!.GetValue<string>() == interactionId);
        Assert.Equal(2, episode["reply"]!["degraded"]!.AsArray().Count);
        Assert.Equal(2, WholeNumber((await _host.GetAsync("/platform/agents/forgetful/stats"))["totalInteractions"]));
        var turn = Assert.Single(_turns, t => (string?)t.GetTagItem("persistent_agents.interaction_id") == interactionId);
        Assert.Equal(true, turn.GetTagItem("persistent_agents.degraded"));
        Assert.Equal(2, turn.Events.Count(e => e.Name == "degraded"));

        var overGrpc = await Grpc.CompleteAsync(new CompleteRequest { Agent = "forgetful", Prompt = RelatedPrompt, SessionId = "s" });
        Assert.Equal(2, overGrpc.Degraded.Count);

        _faults.HealAll();
        var (healedStatus, healed) = await _host.CompleteAsync("forgetful", new { prompt = RelatedPrompt, sessionId = "s" });
        Assert.Equal(200, healedStatus);
        Assert.Empty(healed["degraded"]!.AsArray());
        Assert.NotEmpty(healed["memoryIds"]!.AsArray());
    }

    [Fact]
    public async Task Learning_down_routes_in_catalog_order_within_the_hard_constraints_and_says_so()
    {
        _faults.Break<ILearningApi>(nameof(ILearningApi.RankAsync), new RpcException(new Status(StatusCode.DeadlineExceeded, "learning did not answer")));
        _faults.Break<ILearningApi>(nameof(ILearningApi.RecordOutcomeAsync), new IOException("learning.db is read-only"));

        var (status, reply) = await _host.CompleteAsync("unlearned", new { prompt = "Route this email to billing" });

        Assert.Equal(200, status);
        Assert.Equal(CatalogOrderRanking.Strategy, reply["strategy"]!.GetValue<string>());
        Assert.Equal("sim-best", reply["provider"]!.GetValue<string>());
        Assert.Equal(
            [
                "learning: ranking unavailable, routed in catalog order (DeadlineExceeded: learning did not answer)",
                $"events: the outcome was not published, so learning and analytics miss this interaction ({Topics.InteractionCompleted} event {reply["interactionId"]} failed in learning (learning.db is read-only))",
            ],
            Strings(reply["degraded"]));
        Assert.Equal(1, WholeNumber((await _host.GetAsync("/platform/agents/unlearned/stats"))["totalInteractions"]));

        // The catalog's order, after the constraint that only sim-fair can reply in JSON.
        var json = await Grpc.CompleteAsync(new CompleteRequest { Agent = "unlearned", Prompt = "Give the routing as JSON", ResponseFormat = "json" });
        Assert.Equal((CatalogOrderRanking.Strategy, "sim-fair"), (json.Strategy, json.Provider));
        Assert.Equal(["sim-fair"], json.FallbackPath.Select(a => a.Provider));

        _faults.HealAll();
        var (healedStatus, healed) = await _host.CompleteAsync("unlearned", new { prompt = "Route this email to billing" });
        Assert.Equal(200, healedStatus);
        Assert.StartsWith("thompson", healed["strategy"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(healed["degraded"]!.AsArray());
    }

    [Fact]
    public async Task Episode_store_down_refuses_the_turn_with_503_and_acknowledges_nothing()
    {
        _faults.Break<IMemoryApi>(nameof(IMemoryApi.AppendEpisodeAsync), new IOException("No space left on device"));

        var (status, error) = await _host.CompleteAsync("unrecorded", new { prompt = "Route this email to billing" });

        Assert.Equal(503, status);
        Assert.Matches("^memory: interaction [0-9a-f]{32} could not be stored \\(No space left on device\\); it was not acknowledged$", error["message"]!.GetValue<string>());
        var overGrpc = await Assert.ThrowsAsync<RpcException>(() => Grpc.CompleteAsync(new CompleteRequest { Agent = "unrecorded", Prompt = "Route this email" }).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, overGrpc.StatusCode);
        Assert.Empty(_host.Episodes("unrecorded"));
        await AssertNoStatsAsync("unrecorded");

        _faults.HealAll();
        Assert.Equal(200, (await _host.CompleteAsync("unrecorded", new { prompt = "Route this email to billing" })).Status);
        Assert.Single(_host.Episodes("unrecorded"));
        Assert.Equal(1, WholeNumber((await _host.GetAsync("/platform/agents/unrecorded/stats"))["totalInteractions"]));
    }

    [Fact]
    public async Task Stats_store_down_refuses_the_turn_with_503()
    {
        _faults.Break<IAgentStateStore>(nameof(IAgentStateStore.SaveAsync), new IOException("disk I/O error"));

        var (status, error) = await _host.CompleteAsync("uncounted", new { prompt = "Route this email to billing" });

        Assert.Equal(503, status);
        Assert.Matches("^state: the statistics of interaction [0-9a-f]{32} could not be stored \\(disk I/O error\\); it was not acknowledged$", error["message"]!.GetValue<string>());
        await AssertNoStatsAsync("uncounted");

        _faults.HealAll();
        Assert.Equal(200, (await _host.CompleteAsync("uncounted", new { prompt = "Route this email to billing" })).Status);
        Assert.Equal(1, WholeNumber((await _host.GetAsync("/platform/agents/uncounted/stats"))["totalInteractions"]));
    }

    [Fact]
    public async Task Working_and_semantic_memory_writes_down_the_reply_still_leaves_with_its_episode_and_stats()
    {
        _faults.Break<IMemoryApi>(nameof(IMemoryApi.AppendTurnAsync), new IOException("memory.db is locked"));
        _faults.Break<IMemoryApi>(nameof(IMemoryApi.RememberAsync), new IOException("memory.db is locked"));

        var (status, reply) = await _host.CompleteAsync("half-remembered", new { prompt = RelatedPrompt, sessionId = "s" });

        Assert.Equal(200, status);
        Assert.Equal(
            ["memory: this turn is not in working memory (memory.db is locked)", "memory: this interaction is not in semantic memory (memory.db is locked)"],
            Strings(reply["degraded"]));
        Assert.Single(_host.Episodes("half-remembered"));
        var stats = await _host.GetAsync("/platform/agents/half-remembered/stats");
        Assert.Equal(1, WholeNumber(stats["totalInteractions"]));
        Assert.Equal(0, WholeNumber(stats["memory"]!["workingTurns"]));
        Assert.Equal(0, WholeNumber(stats["memory"]!["semanticMemories"]));
    }

    [Fact]
    public async Task Gateway_health_and_budget_down_route_without_them_and_the_gateway_still_holds_the_budget()
    {
        _faults.Break<IGatewayApi>(nameof(IGatewayApi.GetProviderHealthAsync), new RpcException(new Status(StatusCode.Unavailable, "gateway busy")));
        _faults.Break<IGatewayApi>(nameof(IGatewayApi.GetBudgetAsync), new RpcException(new Status(StatusCode.Unavailable, "gateway busy")));

        var (status, reply) = await _host.CompleteAsync("unmetered", new { prompt = "Route this email to billing" });

        Assert.Equal(200, status);
        Assert.Equal(
            ["gateway: provider health unknown, no circuit taken as open (Unavailable: gateway busy)", "gateway: budget unknown, routed without it (Unavailable: gateway busy)"],
            Strings(reply["degraded"]));

        // Routing could not see pauper's budget, but the gateway holds every call to it.
        var (refusedStatus, refused) = await _host.CompleteAsync("pauper", new { prompt = "Spend money I do not have" });
        Assert.Equal(429, refusedStatus);
        Assert.StartsWith("budget:", refused["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(_host.Episodes("pauper"));
    }

    [Fact]
    public async Task Gateway_down_refuses_the_turn_with_503_before_anything_is_stored()
    {
        _faults.Break<IGatewayApi>(nameof(IGatewayApi.ListModelsAsync), new RpcException(new Status(StatusCode.Unavailable, "connection refused")));

        var (status, error) = await _host.CompleteAsync("stranded", new { prompt = "Route this email to billing" });

        Assert.Equal(503, status);
        Assert.Equal("gateway: the model catalog is unavailable (Unavailable: connection refused)", error["message"]!.GetValue<string>());

        _faults.HealAll();
        _faults.Break<IGatewayApi>(nameof(IGatewayApi.CompleteAsync), new HttpRequestException("gateway reset the connection"));
        var (completeStatus, completeError) = await _host.CompleteAsync("stranded", new { prompt = "Route this email to billing" });
        Assert.Equal(503, completeStatus);
        Assert.Equal("gateway: unavailable (gateway reset the connection)", completeError["message"]!.GetValue<string>());
        Assert.Empty(_host.Episodes("stranded"));
        await AssertNoStatsAsync("stranded");

        _faults.HealAll();
        Assert.Equal(200, (await _host.CompleteAsync("stranded", new { prompt = "Route this email to billing" })).Status);
    }

    [Fact]
    public async Task A_failing_first_provider_falls_back_to_the_next_and_the_turn_succeeds()
    {
        // Learning down makes the chain the catalog's order, so sim-best is known to be tried first.
        _faults.Break<ILearningApi>(nameof(ILearningApi.RankAsync), new IOException("learning down"));
        Assert.Equal(200, (await _host.SendAsync(HttpMethod.Put, "/admin/providers/sim-best/simulation", new { failureRate = 1.0 })).Status);

        var (status, reply) = await _host.CompleteAsync("resilient", new { prompt = "Route this email to billing" });

        Assert.Equal(200, status);
        Assert.Equal("sim-fair", reply["provider"]!.GetValue<string>());
        var path = reply["fallbackPath"]!.AsArray();
        Assert.Equal(["sim-best/failed", "sim-fair/succeeded"], path.Select(a => $"{a!["provider"]}/{a["outcome"]}"));
        Assert.NotEmpty(path[0]!["error"]!.GetValue<string>());
        var arms = (await _host.GetAsync("/platform/agents/resilient/stats"))["taskTypes"]!.AsArray().Single()!["arms"]!.AsArray();
        Assert.Equal(0, Number(arms.Single(a => a!["provider"]!.GetValue<string>() == "sim-best")!["successRate"]));
        Assert.Equal(1, Number(arms.Single(a => a!["provider"]!.GetValue<string>() == "sim-fair")!["successRate"]));
    }

    [Fact]
    public async Task A_caller_giving_up_during_a_slow_recall_is_not_taken_for_a_fault_and_nothing_is_stored()
    {
        _faults.Hang<IMemoryApi>(nameof(IMemoryApi.RecallAsync));

        var call = Grpc.CompleteAsync(
            new CompleteRequest { Agent = "impatient", Prompt = "Route this email to billing" }, deadline: DateTime.UtcNow.AddMilliseconds(300));

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        // The turn's span ends when the loop has given up the turn; by then, had it gone on without recall, it
        // would have said so on its span.
        var turn = await TurnOfAsync("impatient");
        Assert.DoesNotContain(turn.Events, e => e.Name == "degraded");
        Assert.Empty(_host.Episodes("impatient"));
    }

    private async Task<Activity> TurnOfAsync(string agent)
    {
        for (var waited = 0; waited < 100; waited++)
        {
            if (_turns.FirstOrDefault(t => (string?)t.GetTagItem("persistent_agents.agent") == agent) is { } turn)
            {
                return turn;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }

        throw new TimeoutException($"no turn of {agent} ended");
    }

    private static IEnumerable<string> Strings(JsonNode? array) => array!.AsArray().Select(e => e!.GetValue<string>());

    private async Task AssertNoStatsAsync(string agent)
    {
        using var stats = await _host.Rest.GetAsync($"/platform/agents/{agent}/stats");
        Assert.Equal(HttpStatusCode.NotFound, stats.StatusCode);
    }
}

/// <summary>
/// Faults a test switches on and off: a method of a decorated service, by name, fails (or hangs until its
/// caller gives up) until healed. <see cref="Inject"/> decorates the host's services with it.
/// </summary>
public sealed class FaultSwitch
{
    private readonly ConcurrentDictionary<string, Func<CancellationToken, Task>> _faults = new(StringComparer.Ordinal);

    public void Break<TService>(string method, Exception error) => _faults[Key<TService>(method)] = _ => Task.FromException(error);

    public void Hang<TService>(string method) => _faults[Key<TService>(method)] = token => Task.Delay(Timeout.Infinite, token);

    public void HealAll() => _faults.Clear();

    public Func<CancellationToken, Task>? FaultOf<TService>(string method) => _faults.GetValueOrDefault(Key<TService>(method));

    /// <summary>For <c>EmbeddedHost.Build</c>'s overrides: the backends of a turn, each behind this switch.</summary>
    public void Inject(IServiceCollection services)
    {
        Decorate<IMemoryApi>(services);
        Decorate<ILearningApi>(services);
        Decorate<IGatewayApi>(services);
        Decorate<IAgentStateStore>(services);
    }

    private void Decorate<TService>(IServiceCollection services)
        where TService : class
    {
        var original = services.Last(d => d.ServiceType == typeof(TService));
        services.Remove(original);
        services.AddSingleton(sp => FaultingProxy.Decorate(
            (TService)(original.ImplementationInstance
                ?? original.ImplementationFactory?.Invoke(sp)
                ?? ActivatorUtilities.CreateInstance(sp, original.ImplementationType!)),
            this));
    }

    private static string Key<TService>(string method) => $"{typeof(TService).Name}.{method}";
}

/// <summary>Calls the service it decorates, unless the switch has a fault for the method: then the returned task fails with it.</summary>
public class FaultingProxy : DispatchProxy
{
    private static readonly MethodInfo FailGeneric = typeof(FaultingProxy).GetMethod(nameof(FailAsync), BindingFlags.NonPublic | BindingFlags.Static)!;
    private object _inner = null!;
    private Func<string, Func<CancellationToken, Task>?> _faultOf = null!;

    public static TService Decorate<TService>(TService inner, FaultSwitch faults)
        where TService : class
    {
        var proxy = Create<TService, FaultingProxy>();
        var self = (FaultingProxy)(object)proxy;
        self._inner = inner;
        self._faultOf = faults.FaultOf<TService>;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (_faultOf(targetMethod.Name) is { } fault)
        {
            var token = args?.OfType<CancellationToken>().LastOrDefault() ?? CancellationToken.None;
            return targetMethod.ReturnType.IsGenericType
                ? FailGeneric.MakeGenericMethod(targetMethod.ReturnType.GetGenericArguments()[0]).Invoke(null, [fault, token])
                : FailAsync<bool>(fault, token);
        }

        try
        {
            return targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    private static async Task<TResult> FailAsync<TResult>(Func<CancellationToken, Task> fault, CancellationToken token)
    {
        await fault(token);
        throw new InvalidOperationException("an injected fault completed without failing");
    }
}
