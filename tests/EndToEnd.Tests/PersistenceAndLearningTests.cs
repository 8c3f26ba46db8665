using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

public sealed class PersistenceAndLearningTests
{
    [Fact]
    public async Task A_restarted_host_keeps_stats_episodes_and_memories()
    {
        var dataDir = TestHost.NewDataDir();
        string firstInteraction;
        await using (var host = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated()))
        {
            var (_, first) = await host.CompleteAsync("keeper", new { prompt = "Our office in Lyon closes at six on Fridays", taskType = "facts" });
            firstInteraction = first["interactionId"]!.GetValue<string>();
            await host.CompleteAsync("keeper", new { prompt = "Invoices above ten thousand euros need two approvals", taskType = "facts" });
            await host.CompleteAsync("keeper", new { prompt = "The legal team meets every Tuesday morning", taskType = "facts" });
        }

        await using (var host = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated()))
        {
            var stats = await host.GetAsync("/platform/agents/keeper/stats");
            Assert.Equal(3, WholeNumber(stats["totalInteractions"]));
            Assert.Equal(3, WholeNumber(stats["memory"]!["episodes"]));
            Assert.Equal(3, WholeNumber(stats["memory"]!["semanticMemories"]));
            Assert.Equal(3, host.Episodes("keeper").Count());

            var (status, reply) = await host.CompleteAsync("keeper", new { prompt = "When does the office in Lyon close on Fridays?", taskType = "facts" });
            Assert.Equal(200, status);
            Assert.Contains(firstInteraction, reply["memoryIds"]!.AsArray().Select(id => id!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task The_best_provider_wins_the_traffic_and_fallback_carries_on_when_it_fails()
    {
        var dataDir = TestHost.NewDataDir();
        await using (var host = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated()))
        {
            var providers = new List<string>();
            for (var i = 0; i < 60; i++)
            {
                var (status, reply) = await host.CompleteAsync("router", new { prompt = $"Classify message {i}", taskType = "classify" });
                Assert.Equal(200, status);
                providers.Add(reply["provider"]!.GetValue<string>());
            }

            var lastThirty = providers.Skip(30).ToList();
            Assert.True(lastThirty.Count(p => p == "sim-best") >= 20, $"sim-best took {lastThirty.Count(p => p == "sim-best")} of the last 30");

            var stats = await host.GetAsync("/platform/agents/router/stats");
            var arms = stats["taskTypes"]!.AsArray().Single()!["arms"]!.AsArray();
            var best = arms.Single(a => a!["provider"]!.GetValue<string>() == "sim-best")!;
            Assert.All(arms.Where(a => a != best), a => Assert.True(Number(best["learnedScore"]) > Number(a!["learnedScore"])));
            Assert.Equal("sim-best", stats["taskTypes"]!.AsArray().Single()!["preferredProvider"]!.GetValue<string>());
        }

        // The same agent, with what it learned, now meets a best provider that fails every call.
        await using (var host = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated(bestFailureRate: 1)))
        {
            var fellBack = 0;
            for (var i = 0; i < 15; i++)
            {
                var (status, reply) = await host.CompleteAsync("router", new { prompt = $"Classify message {i}", taskType = "classify" });
                Assert.Equal(200, status);
                Assert.NotEqual("sim-best", reply["provider"]!.GetValue<string>());
                var path = reply["fallbackPath"]!.AsArray();
                fellBack += path.Any(a => a!["provider"]!.GetValue<string>() == "sim-best" && a["outcome"]!.GetValue<string>() != "succeeded") ? 1 : 0;
            }

            Assert.True(fellBack > 0, "the failing provider was never tried first");
            var stats = await host.GetAsync("/platform/agents/router/stats");
            Assert.Equal(75, WholeNumber(stats["totalInteractions"]));
            Assert.Equal(0, WholeNumber(stats["failures"]));
        }
    }
}
