using System.Net;
using System.Text.Json.Nodes;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>Routing that learns, seen through the public API: traffic shares, feedback, experiments, policies, formats.</summary>
public sealed class LearningApiTests
{
    private static readonly string[] FastCircuits =
    [
        "--Resilience:BreakDuration", "00:00:01", "--Resilience:MaxRetries", "0",
        "--Resilience:MinimumThroughput", "3", "--Resilience:SamplingDuration", "00:00:00.5",
    ];

    private static string Chosen(JsonNode? selection) => selection!["chosen"]!["provider"]!.GetValue<string>();

    /// <summary>The routing decisions (first-ranked providers) of the last <paramref name="count"/> interactions, oldest first.</summary>
    private static async Task<List<string>> RecentChoicesAsync(TestHost host, string agent, int count)
    {
        var history = await host.GetAsync($"/platform/agents/{agent}/learning/history?limit={count}");
        return [.. history["selections"]!.AsArray().Select(Chosen).Reverse()];
    }

    private static double ShareOf(IEnumerable<string> choices, string provider) =>
        choices.Count(c => c == provider) / (double)choices.Count();

    [Fact]
    public async Task A_broken_leader_loses_its_traffic_within_50_interactions_without_a_failed_complete_and_wins_it_back_when_healed()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), FastCircuits);
        for (var i = 0; i < 60; i++)
        {
            Assert.Equal(200, (await host.CompleteAsync("learner", new { prompt = $"Warm-up {i}", sessionId = $"w{i % 7}" })).Status);
        }

        var beforeBreak = await RecentChoicesAsync(host, "learner", 20);
        Assert.True(ShareOf(beforeBreak, "sim-best") >= 0.6, $"precondition: sim-best led only {ShareOf(beforeBreak, "sim-best"):P0} of the last 20");

        Assert.Equal(200, (await host.SendAsync(HttpMethod.Put, "/admin/providers/sim-best/simulation", new { failureRate = 1.0 })).Status);
        for (var i = 0; i < 50; i++)
        {
            var (status, reply) = await host.CompleteAsync("learner", new { prompt = $"During the outage {i}", sessionId = $"o{i % 7}" });
            Assert.True(status == 200, $"complete {i} after the break failed: {reply}");
            Assert.NotEqual("sim-best", reply["provider"]!.GetValue<string>());
        }

        var afterBreak = await RecentChoicesAsync(host, "learner", 50);
        var windows = Enumerable.Range(20, 31).Select(end => ShareOf(afterBreak.Take(end).TakeLast(20), "sim-best")).ToList();
        Assert.True(windows.Min() < 0.1, $"sim-best's share of the trailing 20 never fell below 10 % in 50 interactions (lowest {windows.Min():P0})");
        Assert.True(ShareOf(afterBreak.TakeLast(20), "sim-best") < 0.1, $"sim-best still led {ShareOf(afterBreak.TakeLast(20), "sim-best"):P0} of the last 20");

        Assert.Equal(200, (await host.SendAsync(HttpMethod.Delete, "/admin/providers/sim-best/simulation")).Status);
        await Task.Delay(TimeSpan.FromMilliseconds(1100));
        var wonBack = false;
        for (var i = 0; i < 150 && !wonBack; i++)
        {
            Assert.Equal(200, (await host.CompleteAsync("learner", new { prompt = $"After healing {i}", sessionId = $"h{i % 7}" })).Status);
            wonBack = i >= 19 && ShareOf(await RecentChoicesAsync(host, "learner", 20), "sim-best") >= 0.5;
        }

        Assert.True(wonBack, "the healed provider did not win back half of the traffic within 150 interactions");
        var stats = await host.GetAsync("/platform/agents/learner/stats");
        Assert.Equal(0, WholeNumber(stats["failures"]));
        var taskStats = stats["taskTypes"]!.AsArray().Single()!;
        Assert.NotEmpty(taskStats["learned"]!.AsArray());
        Assert.Equal(1, taskStats["arms"]!.AsArray().Sum(a => a!["trafficShare"] is null ? 0 : Number(a["trafficShare"])), precision: 6);
    }

    [Fact]
    public async Task Feedback_counts_once_per_interaction_and_bad_feedback_names_the_field()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var (_, reply) = await host.CompleteAsync("rated", new { prompt = "Summarise the meeting", taskType = "summary" });
        var interactionId = reply["interactionId"]!.GetValue<string>();

        var (firstStatus, first) = await host.SendAsync(HttpMethod.Post, "/platform/agents/rated/feedback", new { interactionId, score = 0.2 });
        var (againStatus, again) = await host.SendAsync(HttpMethod.Post, "/platform/agents/rated/feedback", new { interactionId, score = 0.9 });

        Assert.Equal(200, firstStatus);
        Assert.True(first["recorded"]!.GetValue<bool>());
        Assert.Equal(reply["provider"]!.GetValue<string>(), first["provider"]!.GetValue<string>());
        Assert.Equal(200, againStatus);
        Assert.False(again["recorded"]?.GetValue<bool>() ?? false);

        var unknownId = Guid.CreateVersion7().ToString("N");
        (object Body, int Status, string Field)[] bad =
        [
            (new { interactionId, score = 1.5 }, 400, "score:"),
            (new { interactionId, score = -0.1 }, 400, "score:"),
            (new { interactionId = "../../etc", score = 0.5 }, 400, "interactionId:"),
            (new { interactionId = unknownId, score = 0.5 }, 404, "interactionId:"),
        ];
        foreach (var (body, expectedStatus, field) in bad)
        {
            var (status, error) = await host.SendAsync(HttpMethod.Post, "/platform/agents/rated/feedback", body);
            Assert.Equal(expectedStatus, status);
            Assert.StartsWith(field, error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Feedback_scores_history_and_experiments_are_served_over_grpc_too()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var client = new PersistentAgents.Contracts.V1.Agents.AgentsClient(host.Grpc);
        var reply = await client.CompleteAsync(new PersistentAgents.Contracts.V1.CompleteRequest { Agent = "remote", Prompt = "Classify this", TaskType = "classify" });

        var first = await client.FeedbackAsync(new PersistentAgents.Contracts.V1.FeedbackRequest { Agent = "remote", InteractionId = reply.InteractionId, Score = 1 });
        var second = await client.FeedbackAsync(new PersistentAgents.Contracts.V1.FeedbackRequest { Agent = "remote", InteractionId = reply.InteractionId, Score = 1 });
        var history = await client.GetLearningHistoryAsync(new PersistentAgents.Contracts.V1.LearningHistoryRequest { Agent = "remote", TaskType = "classify" });
        var bad = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
            await client.FeedbackAsync(new PersistentAgents.Contracts.V1.FeedbackRequest { Agent = "remote", InteractionId = reply.InteractionId, Score = 2 }));

        Assert.True(first.Recorded);
        Assert.False(second.Recorded);
        Assert.Equal(reply.InteractionId, Assert.Single(history.Selections).InteractionId);
        Assert.Equal(reply.Provider, history.Selections[0].Chosen.Provider);
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Empty((await client.GetExperimentsAsync(new PersistentAgents.Contracts.V1.AgentExperimentsRequest { Agent = "remote" })).Experiments);
    }

    [Fact]
    public async Task An_experiment_splits_the_traffic_and_finds_the_better_variant_significant()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var (putStatus, experiment) = await host.SendAsync(HttpMethod.Put, "/platform/agents/tester/experiments/bandit-vs-poor", new
        {
            metric = "quality",
            variants = new object[]
            {
                new { name = "bandit", weight = 1 },
                new { name = "poor-fixed", weight = 1, fixedArm = new { provider = "sim-poor", model = "poor" } },
            },
        });
        Assert.Equal(200, putStatus);
        Assert.NotNull(experiment["createdAt"]);

        var variants = new List<string>();
        for (var i = 0; i < 100; i++)
        {
            var (status, reply) = await host.CompleteAsync("tester", new { prompt = $"Question {i}", sessionId = $"s{i % 5}" });
            Assert.Equal(200, status);
            Assert.Equal("bandit-vs-poor", reply["experiment"]!.GetValue<string>());
            variants.Add(reply["variant"]!.GetValue<string>());
        }

        var results = (await host.GetAsync("/platform/agents/tester/experiments"))["experiments"]!.AsArray().Single()!;
        var perVariant = results["variants"]!.AsArray().ToDictionary(v => v!["name"]!.GetValue<string>(), v => v!);
        Assert.Equal(variants.Count(v => v == "bandit"), WholeNumber(perVariant["bandit"]["interactions"]));
        Assert.Equal(variants.Count(v => v == "poor-fixed"), WholeNumber(perVariant["poor-fixed"]["interactions"]));
        Assert.InRange(variants.Count(v => v == "bandit"), 30, 70);
        Assert.Equal(0.3, Number(perVariant["poor-fixed"]["meanQuality"]), precision: 6);
        Assert.True(Number(perVariant["bandit"]["metricMean"]) > 0.7);
        Assert.True(perVariant["poor-fixed"]["significant"]!.GetValue<bool>());
        Assert.True(Number(perVariant["poor-fixed"]["pValue"]) < 0.001);
        Assert.Equal("bandit", results["winner"]!.GetValue<string>());

        Assert.Equal(200, (await host.SendAsync(HttpMethod.Delete, "/platform/agents/tester/experiments/bandit-vs-poor")).Status);
        Assert.Equal(404, (await host.SendAsync(HttpMethod.Delete, "/platform/agents/tester/experiments/bandit-vs-poor")).Status);
        var (_, after) = await host.CompleteAsync("tester", new { prompt = "No experiment now" });
        Assert.Equal("", after["experiment"]?.GetValue<string>() ?? "");
    }

    [Theory]
    [InlineData("""{"variants":[{"name":"only","weight":1}]}""", "variants:")]
    [InlineData("""{"variants":[{"name":"a","weight":0},{"name":"b","weight":1}]}""", "variants[0].weight:")]
    [InlineData("""{"variants":[{"name":"a","weight":1},{"name":"a","weight":1}]}""", "variants[1].name:")]
    [InlineData("""{"variants":[{"name":"a","weight":1},{"name":"b","weight":1,"fixedArm":{"provider":"nobody","model":"x"}}]}""", "variants[1].fixedArm:")]
    [InlineData("""{"variants":[{"name":"a","weight":1},{"name":"b","weight":1,"policy":"stingy"}]}""", "variants[1].policy:")]
    [InlineData("""{"metric":"vibes","variants":[{"name":"a","weight":1},{"name":"b","weight":1}]}""", "metric:")]
    [InlineData("""{"variants":[{"name":"a","weight":"heavy"},{"name":"b","weight":1}]}""", "variants[0].weight:")]
    public async Task A_bad_experiment_is_refused_naming_the_field_and_nothing_is_stored(string body, string field)
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");

        using var response = await host.Rest.PutAsync("/platform/agents/tester/experiments/bad", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith(field, (await TestHost.ReadObjectAsync(response))["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty((await host.GetAsync("/platform/agents/tester/experiments"))["experiments"]?.AsArray() ?? []);
    }

    [Fact]
    public async Task A_json_reply_goes_to_a_model_that_can_give_one_and_policies_set_the_cost_weight()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        for (var i = 0; i < 5; i++)
        {
            var (status, reply) = await host.CompleteAsync("formatter", new { prompt = $"List three colours {i}", responseFormat = "json" });
            Assert.Equal(200, status);
            Assert.Equal("sim-fair", reply["provider"]!.GetValue<string>());
            Assert.IsType<JsonObject>(JsonNode.Parse(reply["text"]!.GetValue<string>()));
            Assert.Equal(0.55, Number(reply["quality"]), precision: 6);
        }

        var (costFirst, frugal) = await host.CompleteAsync("formatter", new { prompt = "Anything", policy = "cost-first" });
        Assert.Equal(200, costFirst);
        Assert.Contains("lambda=0.6", frugal["strategy"]!.GetValue<string>(), StringComparison.Ordinal);

        var (badPolicy, policyError) = await host.CompleteAsync("formatter", new { prompt = "Anything", policy = "stingy" });
        var (badFormat, formatError) = await host.CompleteAsync("formatter", new { prompt = "Anything", responseFormat = "xml" });
        Assert.Equal(400, badPolicy);
        Assert.StartsWith("policy:", policyError["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(400, badFormat);
        Assert.StartsWith("responseFormat:", formatError["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(6, WholeNumber((await host.GetAsync("/platform/agents/formatter/stats"))["totalInteractions"]));
    }

    [Fact]
    public async Task Without_a_model_that_can_answer_json_a_json_request_is_refused_before_anything_is_stored()
    {
        var noJson = TestCatalogs.Simulated().Replace("capabilities: [streaming, json]", "capabilities: [streaming]", StringComparison.Ordinal);
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), noJson);

        var (status, error) = await host.CompleteAsync("formatter", new { prompt = "List three colours", responseFormat = "json" });

        Assert.Equal(400, status);
        Assert.StartsWith("responseFormat:", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(host.Episodes("formatter"));
    }
}
