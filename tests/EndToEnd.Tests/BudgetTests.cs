using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using Grpc.Core;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

public sealed class BudgetTests
{
    [Fact]
    public async Task A_call_that_would_pass_the_daily_budget_is_refused_with_429_and_nothing_is_sent_or_stored()
    {
        // Each call reserves about 1,024 output tokens at 2 USD per 1M (~0.002 USD) before it is made.
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Budgets:DailyUsdByAgent:pauper", "0.0005");

        var (status, error) = await host.CompleteAsync("pauper", new { prompt = "Spend money I do not have" });

        Assert.Equal(429, status);
        var message = error["message"]!.GetValue<string>();
        Assert.StartsWith("budget: agent 'pauper' has a daily budget of 0.0005 USD", message, StringComparison.Ordinal);
        Assert.Contains("0 USD is spent or reserved today", message, StringComparison.Ordinal);
        using (var again = await host.Rest.PostAsJsonAsync("/platform/agents/pauper/complete", new { prompt = "Spend money I do not have" }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, again.StatusCode);
            AssertRetryAfterIsTheNextUtcMidnight(again);
        }

        using var stats = await host.Rest.GetAsync("/platform/agents/pauper/stats");
        Assert.Equal(HttpStatusCode.NotFound, stats.StatusCode);
        Assert.Empty(host.Episodes("pauper"));
    }

    [Fact]
    public async Task Concurrent_calls_cannot_overspend_the_budget_by_more_than_one_call()
    {
        const double budget = 0.0030;
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Budgets:DailyUsdByAgent:frugal", "0.0030");

        var results = new List<(int Status, double Cost)>();
        for (var round = 0; round < 4; round++)
        {
            var replies = await Task.WhenAll(Enumerable.Range(0, 10).Select(i =>
                host.CompleteAsync("frugal", new { prompt = $"Round {round} request {i}", sessionId = $"s{i}" })));
            results.AddRange(replies.Select(r => (r.Status, r.Status == 200 ? Number(r.Body["costUsd"]) : 0)));
        }

        Assert.Contains(results, r => r.Status == 200);
        Assert.Contains(results, r => r.Status == 429);
        Assert.All(results, r => Assert.True(r.Status is 200 or 429, $"status {r.Status}"));
        var spent = Number((await host.GetAsync("/platform/agents/frugal/stats"))["totalCostUsd"]);
        var largestCall = results.Max(r => r.Cost);
        Assert.True(spent <= budget + largestCall, $"spent {spent} against a budget of {budget}");
    }

    [Fact]
    public async Task With_the_cheap_provider_down_and_the_dear_one_over_budget_every_route_answers_429_naming_both_with_retry_after_to_utc_midnight()
    {
        // The dear model's reservation (1,024 output tokens at 100 USD per 1M) is about 0.1 USD, ten times the budget.
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), """
            simulated: always
            providers:
              - name: sim-cheap
                kind: simulated
                models:
                  - name: cheap
                    inputPricePerMTok: 0
                    outputPricePerMTok: 0
                    quality: 0.7
                    simulation: { quality: 0.9, failureRate: 0, latencyMs: 0 }
              - name: sim-dear
                kind: simulated
                models:
                  - name: dear
                    inputPricePerMTok: 100
                    outputPricePerMTok: 100
                    quality: 0.9
                    simulation: { quality: 0.9, failureRate: 0, latencyMs: 0 }
            """, "--Budgets:DailyUsdByAgent:thrifty", "0.01");
        Assert.Equal(200, (await host.SendAsync(HttpMethod.Put, "/admin/providers/sim-cheap/simulation", new { failureRate = 1.0 })).Status);

        using (var rest = await host.Rest.PostAsJsonAsync("/platform/agents/thrifty/complete", new { prompt = "Answer on the cheap" }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, rest.StatusCode);
            AssertRetryAfterIsTheNextUtcMidnight(rest);
            AssertNamesBothCauses((await TestHost.ReadObjectAsync(rest))["message"]!.GetValue<string>());
        }

        using (var sse = await host.Rest.PostAsJsonAsync("/platform/agents/thrifty/complete?stream=true", new { prompt = "Stream it on the cheap" }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, sse.StatusCode);
            AssertRetryAfterIsTheNextUtcMidnight(sse);
            AssertNamesBothCauses((await TestHost.ReadObjectAsync(sse))["message"]!.GetValue<string>());
        }

        var client = new Contracts.V1.Agents.AgentsClient(host.Grpc);
        var unary = await Assert.ThrowsAsync<RpcException>(() => client.CompleteAsync(new CompleteRequest { Agent = "thrifty", Prompt = "Answer over gRPC" }).ResponseAsync);
        var streamed = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = client.CompleteStream(new CompleteRequest { Agent = "thrifty", Prompt = "Stream over gRPC" });
            await foreach (var unexpected in call.ResponseStream.ReadAllAsync())
            {
                Assert.Fail($"an event came before the refusal: {unexpected}");
            }
        });
        foreach (var refused in new[] { unary, streamed })
        {
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            AssertNamesBothCauses(refused.Status.Detail);
            AssertIsTheNextUtcMidnight(int.Parse(refused.Trailers.GetValue(BudgetDay.RetryAfterKey)!, CultureInfo.InvariantCulture));
        }

        foreach (var model in new[] { "agent/thrifty", "auto" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = JsonContent.Create(new { model, messages = new[] { new { role = "user", content = "Answer through the OpenAI route" } } }),
            };
            request.Headers.Add("x-pa-agent", "thrifty");
            using var openAi = await host.Rest.SendAsync(request);
            Assert.Equal(HttpStatusCode.TooManyRequests, openAi.StatusCode);
            AssertRetryAfterIsTheNextUtcMidnight(openAi);
            var error = (await TestHost.ReadObjectAsync(openAi))["error"]!.AsObject();
            Assert.Equal("insufficient_quota", error["type"]!.GetValue<string>());
            Assert.Equal("budget_exceeded", error["code"]!.GetValue<string>());
            AssertNamesBothCauses(error["message"]!.GetValue<string>());
        }

        // A refused turn is not acknowledged: no episode, no statistics.
        Assert.Empty(host.Episodes("thrifty"));
        using var stats = await host.Rest.GetAsync("/platform/agents/thrifty/stats");
        Assert.Equal(HttpStatusCode.NotFound, stats.StatusCode);
    }

    private static void AssertNamesBothCauses(string message)
    {
        Assert.StartsWith("budget: cheaper providers failed: sim-cheap/cheap ", message, StringComparison.Ordinal);
        Assert.Contains("; the rest exceed the daily budget of 0.01 USD: agent 'thrifty' has a daily budget of 0.01 USD", message, StringComparison.Ordinal);
        Assert.Contains("sim-dear/dear would cost up to ", message, StringComparison.Ordinal);
    }

    private static void AssertRetryAfterIsTheNextUtcMidnight(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter?.Delta;
        Assert.True(retryAfter is not null, $"no Retry-After in seconds: {response.Headers}");
        AssertIsTheNextUtcMidnight((int)retryAfter.Value.TotalSeconds);
    }

    /// <summary>Said a moment ago, so at most a minute more than the seconds left now (and a day less when midnight passed in between).</summary>
    private static void AssertIsTheNextUtcMidnight(int seconds)
    {
        var drift = (((seconds - BudgetDay.SecondsUntilNext(TimeProvider.System)) % 86_400) + 86_400) % 86_400;
        Assert.InRange(drift, 0, 60);
    }

    [Fact]
    public async Task Agents_without_a_budget_are_not_limited()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Budgets:DailyUsdByAgent:pauper", "0.0000001");
        var (status, _) = await host.CompleteAsync("rich", new { prompt = "No budget here" });
        Assert.Equal(200, status);
    }
}
