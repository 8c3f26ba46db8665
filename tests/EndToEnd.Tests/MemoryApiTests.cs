using System.Globalization;
using System.Text.Json.Nodes;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

public sealed class MemoryApiTests : IAsyncLifetime
{
    private TestHost _host = null!;

    public async Task InitializeAsync() => _host = await TestHost.StartAsync(
        TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Memory:WorkingMemoryTtlByAgent:brief", "00:00:01");

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static string Today => DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    [Fact]
    public async Task Working_memory_shows_a_sessions_turns_oldest_first()
    {
        await _host.CompleteAsync("clerk", new { prompt = "first in s1", sessionId = "s1" });
        await _host.CompleteAsync("clerk", new { prompt = "only in s2", sessionId = "s2" });
        await _host.CompleteAsync("clerk", new { prompt = "second in s1", sessionId = "s1" });

        var working = await _host.GetAsync("/platform/agents/clerk/memory/working?sessionId=s1");
        var prompts = working["turns"]!.AsArray().Select(t => t!["prompt"]!.GetValue<string>()).ToList();
        Assert.Equal(["first in s1", "second in s1"], prompts);

        var (status, error) = await _host.SendAsync(HttpMethod.Get, "/platform/agents/clerk/memory/working?sessionId=a%20b");
        Assert.Equal(400, status);
        Assert.StartsWith("sessionId:", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_working_memory_turn_is_gone_after_its_ttl()
    {
        await _host.CompleteAsync("brief", new { prompt = "remember me briefly", sessionId = "s" });
        Assert.Single((await _host.GetAsync("/platform/agents/brief/memory/working?sessionId=s"))["turns"]!.AsArray());

        await Task.Delay(TimeSpan.FromMilliseconds(1500));

        Assert.Empty((await _host.GetAsync("/platform/agents/brief/memory/working?sessionId=s"))["turns"]!.AsArray());
        var stats = await _host.GetAsync("/platform/agents/brief/stats");
        Assert.Equal(0, WholeNumber(stats["memory"]!["workingTurns"]));
        Assert.Equal(1, WholeNumber(stats["memory"]!["semanticMemories"]));
    }

    [Fact]
    public async Task A_fact_told_in_other_words_is_recalled_by_the_default_model_after_a_restart()
    {
        var dataDir = TestHost.NewDataDir();
        string told;
        await using (var first = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated(), "--Memory:Embeddings:Kind", "minilm"))
        {
            var (_, reply) = await first.CompleteAsync("concierge", new { prompt = "My sister Ingrid is flying in from Oslo on the 14th", taskType = "chat" });
            told = reply["interactionId"]!.GetValue<string>();
            await first.CompleteAsync("concierge", new { prompt = "The quarterly invoice run starts on the first Monday", taskType = "chat" });
            await first.CompleteAsync("concierge", new { prompt = "Printer paper is ordered from the supplier in Ghent", taskType = "chat" });
        }

        await using var restarted = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated(), "--Memory:Embeddings:Kind", "minilm");
        var (status, recalled) = await restarted.SendAsync(HttpMethod.Post, "/platform/agents/concierge/memory/recall",
            new { query = "When does my sibling land from Norway?", topK = 1 });

        Assert.Equal(200, status);
        Assert.Equal(told, recalled["memories"]!.AsArray()[0]!["id"]!.GetValue<string>());
        Assert.Equal("all-MiniLM-L6-v2@384", recalled["embedder"]!.GetValue<string>());
        Assert.Empty(recalled["queryEmbedding"]?.AsArray() ?? []);
    }

    [Fact]
    public async Task Recall_finds_the_agents_own_memories_with_filters()
    {
        var (_, invoice) = await _host.CompleteAsync("recaller", new { prompt = "Invoices from Acme go to the billing team in Lyon", taskType = "routing" });
        await _host.CompleteAsync("recaller", new { prompt = "Contracts with Globex need a legal review first", taskType = "legal" });

        var (status, recalled) = await _host.SendAsync(HttpMethod.Post, "/platform/agents/recaller/memory/recall", new { query = "Where do Acme invoices go?", topK = 5 });
        Assert.Equal(200, status);
        var first = recalled["memories"]!.AsArray()[0]!;
        Assert.Equal(invoice["interactionId"]!.GetValue<string>(), first["id"]!.GetValue<string>());
        Assert.True(Number(first["similarity"]) > 0);
        Assert.True(WholeNumber(first["tokens"]) > 0);

        var (_, legalOnly) = await _host.SendAsync(HttpMethod.Post, "/platform/agents/recaller/memory/recall", new { query = "Where do Acme invoices go?", taskType = "legal" });
        Assert.All(legalOnly["memories"]!.AsArray(), m => Assert.Equal("legal", m!["taskType"]!.GetValue<string>()));

        var (otherStatus, otherAgent) = await _host.SendAsync(HttpMethod.Post, "/platform/agents/someone-else/memory/recall", new { query = "Invoices from Acme go to the billing team in Lyon" });
        Assert.Equal(404, otherStatus);
        Assert.StartsWith("agent:", otherAgent["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var (badStatus, error) = await _host.SendAsync(HttpMethod.Post, "/platform/agents/recaller/memory/recall", new { query = "" });
        Assert.Equal(400, badStatus);
        Assert.StartsWith("query:", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Episodes_are_listed_by_day_and_read_by_interaction_id()
    {
        var (_, reply) = await _host.CompleteAsync("archivist", new { prompt = "File this under 2026 correspondence" });
        var id = reply["interactionId"]!.GetValue<string>();

        var listed = await _host.GetAsync($"/platform/agents/archivist/memory/episodes?from={Today}&to={Today}");
        var entry = Assert.Single(listed["episodes"]!.AsArray())!;
        Assert.Equal(id, entry["interactionId"]!.GetValue<string>());
        Assert.Equal(Today, entry["day"]!.GetValue<string>());
        Assert.True(WholeNumber(entry["bytes"]) > 0);
        Assert.Empty((await _host.GetAsync("/platform/agents/archivist/memory/episodes?to=2000-01-01"))["episodes"]!.AsArray());

        var episode = await _host.GetAsync($"/platform/agents/archivist/memory/episodes/{id}");
        var json = JsonNode.Parse(episode["json"]!.GetValue<string>())!;
        Assert.Equal("File this under 2026 correspondence", json["prompt"]!.GetValue<string>());
        Assert.Equal(id, json["reply"]!["interactionId"]!.GetValue<string>());

        var (missing, _) = await _host.SendAsync(HttpMethod.Get, $"/platform/agents/someone-else/memory/episodes/{id}");
        Assert.Equal(404, missing);
        var (badId, idError) = await _host.SendAsync(HttpMethod.Get, "/platform/agents/archivist/memory/episodes/not-an-id");
        Assert.Equal(400, badId);
        Assert.StartsWith("interactionId:", idError["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var (badDay, dayError) = await _host.SendAsync(HttpMethod.Get, "/platform/agents/archivist/memory/episodes?from=yesterday");
        Assert.Equal(400, badDay);
        Assert.StartsWith("from:", dayError["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stats_report_each_tiers_count_and_bytes()
    {
        await _host.CompleteAsync("measured", new { prompt = "How big is my memory?" });
        var memory = (await _host.GetAsync("/platform/agents/measured/stats"))["memory"]!;
        foreach (var tier in new[] { "working", "semantic", "episode" })
        {
            Assert.True(WholeNumber(memory[$"{tier}Bytes"]) > 0, $"{tier}Bytes");
        }

        Assert.True(WholeNumber(memory["semanticBytes"]) >= 768 * 4);
    }

    [Fact]
    public async Task Purge_removes_an_agent_from_every_tier_and_nothing_of_another()
    {
        const string prompt = "The shared fact about Initech's quarterly report";
        foreach (var agent in new[] { "forgetful", "keeper" })
        {
            await _host.CompleteAsync(agent, new { prompt, sessionId = "s" });
            await _host.CompleteAsync(agent, new { prompt = "Another note for the same session", sessionId = "s" });
        }

        var (status, purged) = await _host.SendAsync(HttpMethod.Delete, "/platform/agents/forgetful/memory");
        Assert.Equal(200, status);
        Assert.Equal(2, WholeNumber(purged["workingTurns"]));
        Assert.Equal(2, WholeNumber(purged["episodes"]));
        Assert.True(WholeNumber(purged["semanticMemories"]) >= 1);

        // Forgotten in every tier, the agent is no longer there for any read.
        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, "/platform/agents/forgetful/stats"),
            (HttpMethod.Get, "/platform/agents/forgetful/memory/working?sessionId=s"),
            (HttpMethod.Get, "/platform/agents/forgetful/memory/episodes"),
            (HttpMethod.Post, "/platform/agents/forgetful/memory/recall"),
        })
        {
            var (readStatus, _) = await _host.SendAsync(method, path, method == HttpMethod.Post ? new { query = prompt } : null);
            Assert.Equal(404, readStatus);
        }

        var keeper = await _host.GetAsync("/platform/agents/keeper/stats");
        Assert.Equal(2, WholeNumber(keeper["totalInteractions"]));
        Assert.Equal(2, WholeNumber(keeper["memory"]!["workingTurns"]));
        Assert.Equal(2, WholeNumber(keeper["memory"]!["episodes"]));
        var (_, keeperRecall) = await _host.SendAsync(HttpMethod.Post, "/platform/agents/keeper/memory/recall", new { query = prompt });
        Assert.NotEmpty(keeperRecall["memories"]!.AsArray());

        // Forgotten, the agent starts afresh.
        var (again, reply) = await _host.CompleteAsync("forgetful", new { prompt, sessionId = "s" });
        Assert.Equal(200, again);
        Assert.Empty(reply["memoryIds"]!.AsArray());
    }
}

public sealed class MemoryMaintenanceTests
{
    [Fact]
    public async Task On_start_old_episodes_past_retention_are_deleted_and_finished_days_consolidated()
    {
        var dataDir = TestHost.NewDataDir();
        var agentFolder = Path.Combine(dataDir, "episodes", "default", "historian");
        var expiredDay = DateTime.UtcNow.AddDays(-100).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var recentDay = DateTime.UtcNow.AddDays(-3).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var recentId = PersistentAgents.Contracts.InteractionIds.New(DateTimeOffset.UtcNow.AddDays(-3));
        Directory.CreateDirectory(Path.Combine(agentFolder, expiredDay));
        Directory.CreateDirectory(Path.Combine(agentFolder, recentDay));
        await File.WriteAllTextAsync(Path.Combine(agentFolder, expiredDay, "old.json"), "{}");
        await File.WriteAllTextAsync(Path.Combine(agentFolder, recentDay, recentId + ".json"), """
            {"taskType":"invoice_routing","success":true,"prompt":"Route the Umbrella Corp invoice for March",
             "reply":{"provider":"sim-best","model":"best","quality":0.95,"costUsd":0.0002}}
            """);

        await using var host = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated());
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Directory.Exists(Path.Combine(agentFolder, expiredDay)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.False(Directory.Exists(Path.Combine(agentFolder, expiredDay)));
        Assert.True(File.Exists(Path.Combine(agentFolder, recentDay, recentId + ".json")));

        JsonArray memories = [];
        while (memories.Count == 0 && DateTime.UtcNow < deadline)
        {
            var (_, recalled) = await host.SendAsync(HttpMethod.Post, "/platform/agents/historian/memory/recall",
                new { query = "Umbrella Corp invoice routing", taskType = "consolidated" });
            memories = recalled["memories"]!.AsArray();
        }

        var summary = Assert.Single(memories)!;
        Assert.Equal($"consolidated-{recentDay}", summary["id"]!.GetValue<string>());
        Assert.Contains("invoice_routing: 1 (1 succeeded)", summary["text"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("sim-best/best", summary["text"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
