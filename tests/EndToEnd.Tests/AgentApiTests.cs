using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using PersistentAgents.Contracts.V1;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

public sealed class AgentApiTests : IAsyncLifetime
{
    private TestHost _host = null!;

    public async Task InitializeAsync() => _host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Complete_replies_with_every_field_and_stats_and_health_account_for_it()
    {
        var (status, reply) = await _host.CompleteAsync("email-router", new
        {
            prompt = "Route this invoice dispute to the right team",
            taskType = "email_routing",
            context = new { from = "customer@example.com", priority = 2 },
            sessionId = "s-1",
        });

        Assert.Equal(200, status);
        Assert.False(string.IsNullOrWhiteSpace(reply["text"]!.GetValue<string>()));
        Assert.StartsWith("sim-", reply["provider"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(reply["model"]!.GetValue<string>()));
        Assert.True(reply["simulated"]!.GetValue<bool>());
        Assert.True(WholeNumber(reply["tokensIn"]) > 0);
        Assert.True(WholeNumber(reply["tokensOut"]) > 0);
        Assert.True(Number(reply["costUsd"]) > 0);
        Assert.True(Number(reply["latencyMs"]) > 0);
        Assert.False(reply["cacheHit"]!.GetValue<bool>());
        Assert.NotEmpty(reply["fallbackPath"]!.AsArray());
        Assert.Equal("succeeded", reply["fallbackPath"]!.AsArray()[^1]!["outcome"]!.GetValue<string>());
        Assert.NotNull(reply["memoryIds"]);
        Assert.Equal(32, reply["interactionId"]!.GetValue<string>().Length);
        Assert.Equal("email_routing", reply["taskType"]!.GetValue<string>());

        // Cost follows the catalog: 1 USD per 1M input tokens, 2 USD per 1M output tokens.
        var expectedCost = (WholeNumber(reply["tokensIn"]) * 1.0 + WholeNumber(reply["tokensOut"]) * 2.0) / 1_000_000;
        Assert.Equal(expectedCost, Number(reply["costUsd"]), 9);

        var stats = await _host.GetAsync("/platform/agents/email-router/stats");
        Assert.Equal(1, WholeNumber(stats["totalInteractions"]));
        Assert.Equal(1, WholeNumber(stats["successes"]));
        Assert.Equal(Number(reply["costUsd"]), Number(stats["totalCostUsd"]), 9);
        var taskType = stats["taskTypes"]!.AsArray().Single()!;
        Assert.Equal("email_routing", taskType["taskType"]!.GetValue<string>());
        var arm = taskType["arms"]!.AsArray().Single(a => a!["provider"]!.GetValue<string>() == reply["provider"]!.GetValue<string>())!;
        Assert.Equal(1, WholeNumber(arm["interactions"]));
        Assert.Equal(1, Number(arm["successRate"]));
        Assert.True(Number(arm["learnedScore"]) > 0);
        Assert.Equal(1, WholeNumber(stats["memory"]!["episodes"]));
        Assert.Equal(1, WholeNumber(stats["memory"]!["workingTurns"]));

        var health = await _host.GetAsync("/platform/agents/email-router/health");
        Assert.Equal("ok", health["status"]!.GetValue<string>());
        Assert.NotNull(health["lastActivity"]);
        Assert.Equal(3, health["providers"]!.AsArray().Count);
        Assert.All(health["providers"]!.AsArray(), p => Assert.Equal("closed", p!["state"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Grpc_clients_reach_the_same_agents_as_rest()
    {
        var client = new PersistentAgents.Contracts.V1.Agents.AgentsClient(_host.Grpc);
        var reply = await client.CompleteAsync(new CompleteRequest { Agent = "grpc-agent", Prompt = "Summarise the contract", TaskType = "legal_triage" });
        Assert.True(reply.Simulated);
        Assert.NotEmpty(reply.InteractionId);

        var stats = await _host.GetAsync("/platform/agents/grpc-agent/stats");
        Assert.Equal(1, WholeNumber(stats["totalInteractions"]));

        var grpcStats = await client.GetStatsAsync(new GetStatsRequest { Agent = "grpc-agent" });
        Assert.Equal(1, grpcStats.TotalInteractions);
    }

    [Fact]
    public async Task Agents_never_see_each_others_memory_or_stats()
    {
        const string prompt = "The supplier Acme always invoices in euros and pays within thirty days";
        Assert.Equal(200, (await _host.CompleteAsync("agent-a", new { prompt })).Status);
        var (_, secondForA) = await _host.CompleteAsync("agent-a", new { prompt });
        Assert.NotEmpty(secondForA["memoryIds"]!.AsArray());

        var (status, firstForB) = await _host.CompleteAsync("agent-b", new { prompt });
        Assert.Equal(200, status);
        Assert.Empty(firstForB["memoryIds"]!.AsArray());
        Assert.DoesNotContain("Acme", firstForB["text"]!.GetValue<string>().Replace(prompt[..20], "", StringComparison.Ordinal), StringComparison.Ordinal);

        var statsA = await _host.GetAsync("/platform/agents/agent-a/stats");
        var statsB = await _host.GetAsync("/platform/agents/agent-b/stats");
        Assert.Equal(2, WholeNumber(statsA["totalInteractions"]));
        Assert.Equal(1, WholeNumber(statsB["totalInteractions"]));
        Assert.Equal(1, WholeNumber(statsB["memory"]!["semanticMemories"]));
        Assert.Single(_host.Episodes("agent-b"));
    }

    [Fact]
    public async Task Concurrent_completes_on_one_agent_are_all_counted_and_run_one_at_a_time()
    {
        var replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            _host.CompleteAsync("busy-agent", new { prompt = $"Request number {i}", sessionId = "shared" })));

        Assert.All(replies, r => Assert.Equal(200, r.Status));
        Assert.Equal(20, replies.Select(r => r.Body["interactionId"]!.GetValue<string>()).Distinct().Count());
        var stats = await _host.GetAsync("/platform/agents/busy-agent/stats");
        Assert.Equal(20, WholeNumber(stats["totalInteractions"]));

        // Each episode records when its turn started and how long it took: no two turns overlap.
        var turns = _host.Episodes("busy-agent")
            .Select(e => (Start: DateTimeOffset.Parse(e["at"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture),
                          Duration: TimeSpan.FromMilliseconds(Number(e["reply"]!["latencyMs"]))))
            .OrderBy(t => t.Start)
            .ToList();
        Assert.Equal(20, turns.Count);
        for (var i = 1; i < turns.Count; i++)
        {
            Assert.True(turns[i].Start >= turns[i - 1].Start + turns[i - 1].Duration,
                $"turn {i} started at {turns[i].Start:O} before turn {i - 1} ended");
        }
    }

    [Fact]
    public async Task Different_agents_run_in_parallel()
    {
        var catalog = TestCatalogs.Simulated().Replace("latencyMs: 2", "latencyMs: 500", StringComparison.Ordinal);
        await using var slow = await TestHost.StartAsync(TestHost.NewDataDir(), catalog);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var replies = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => slow.CompleteAsync($"parallel-{i}", new { prompt = "hello" })));
        Assert.All(replies, r => Assert.Equal(200, r.Status));

        // Four serialised turns would take at least 4 × 400 ms (the simulated latency jitters by ±20 %).
        Assert.True(started.Elapsed < TimeSpan.FromMilliseconds(1400), $"took {started.Elapsed}");
    }

    public static TheoryData<string, string, string> BadRequests => new()
    {
        { "bad-input", """{"prompt":""}""", "prompt" },
        { "bad-input", """{"prompt":"   "}""", "prompt" },
        { "bad-input", $$"""{"prompt":"{{new string('x', 40_000)}}"}""", "prompt" },
        { "..%2Fx", """{"prompt":"hello"}""", "agent" },
        { new string('a', 300), """{"prompt":"hello"}""", "agent" },
        { "Bad-Case", """{"prompt":"hello"}""", "agent" },
        { "bad-input", """{"prompt":"hello","bogus":true}""", "bogus" },
        { "bad-input", """{"prompt":42}""", "prompt" },
        { "bad-input", """{"prompt":"hello","context":"not an object"}""", "context" },
        { "bad-input", """{"prompt":"hello","taskType":"../etc"}""", "taskType" },
        { "bad-input", """{"prompt":"hello","sessionId":"a b"}""", "sessionId" },
        { "bad-input", """["prompt"]""", "body" },
        { "bad-input", "this is not json", "body" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_input_is_refused_naming_the_field_and_nothing_is_stored(string agent, string body, string field)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await _host.Rest.PostAsync($"/platform/agents/{agent}/complete", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await TestHost.ReadObjectAsync(response);
        Assert.StartsWith(field + ":", error["message"]!.GetValue<string>(), StringComparison.Ordinal);

        using var stats = await _host.Rest.GetAsync("/platform/agents/bad-input/stats");
        Assert.Equal(HttpStatusCode.NotFound, stats.StatusCode);
        Assert.False(Directory.Exists(Path.Combine(_host.DataDir, "episodes")));
    }

    [Fact]
    public async Task Unknown_agent_has_no_stats_or_health()
    {
        using var stats = await _host.Rest.GetAsync("/platform/agents/nobody/stats");
        Assert.Equal(HttpStatusCode.NotFound, stats.StatusCode);
        Assert.Contains("agent:", (await TestHost.ReadObjectAsync(stats))["message"]!.GetValue<string>(), StringComparison.Ordinal);
        using var health = await _host.Rest.GetAsync("/platform/agents/nobody/health");
        Assert.Equal(HttpStatusCode.NotFound, health.StatusCode);
    }
}
