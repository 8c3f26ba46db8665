using System.Net;
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
    public async Task Agents_without_a_budget_are_not_limited()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Budgets:DailyUsdByAgent:pauper", "0.0000001");
        var (status, _) = await host.CompleteAsync("rich", new { prompt = "No budget here" });
        Assert.Equal(200, status);
    }
}
