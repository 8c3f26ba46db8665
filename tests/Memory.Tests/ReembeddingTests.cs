using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts.V1;
using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Embeddings;
using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Memory.Tests;

/// <summary>A store opened with another embedder than the one that wrote it: never mixes models, re-embeds from the texts.</summary>
public sealed class ReembeddingTests : IDisposable
{
    private static readonly AgentRef Alice = new() { Tenant = "acme", Agent = "alice" };
    private const string Lyon = "Our office in Lyon closes at six on Fridays";
    private readonly TempFolder _folder = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task After_an_embedder_change_recall_says_degraded_until_the_memories_are_embedded_again()
    {
        using (var before = new HashedNGramEmbedder(768))
        {
            var (memory, _) = NewService(before);
            await RememberAsync(memory, "lyon", Lyon);
            await RememberAsync(memory, "legal", "The legal team meets every Tuesday morning");
        }

        using var after = new HashedNGramEmbedder(512);
        var (changed, index) = NewService(after);
        var waiting = await RecallAsync(changed, "When does the office in Lyon close on Fridays?");
        Assert.Empty(waiting.Memories);
        Assert.Contains("memory re-embedding: 2 memories", waiting.Degraded, StringComparison.Ordinal);

        using var reembedding = new SemanticMemoryReembedding(index, changed, new StaleMemoryStatus(), NullLogger<SemanticMemoryReembedding>.Instance);
        await reembedding.StartAsync(CancellationToken.None);
        await reembedding.ExecuteTask!;

        Assert.Equal(2, reembedding.Reembedded);
        var recalled = await RecallAsync(changed, "When does the office in Lyon close on Fridays?");
        Assert.Equal("", recalled.Degraded);
        Assert.Equal("lyon", recalled.Memories[0].Id);
        Assert.Equal("hashed-ngrams@512", recalled.Embedder);
        Assert.Equal(512, recalled.QueryEmbedding.Count);
        Assert.Equal(2, (await changed.GetUsageAsync(new GetMemoryUsageRequest { Agent = Alice }, CancellationToken.None)).SemanticMemories);
        Assert.Equal(0, await index.CountStaleAsync(new AgentScope("acme", "alice"), CancellationToken.None));
    }

    [Fact]
    public async Task Memories_of_a_database_written_before_vectors_named_their_embedder_are_re_embedded()
    {
        // The schema as it was: no embedder column.
        var path = _folder.File("memory.db");
        using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var create = connection.CreateCommand();
            create.CommandText = """
                CREATE TABLE semantic_memories (tenant TEXT NOT NULL, agent TEXT NOT NULL, id TEXT NOT NULL, vector BLOB NOT NULL,
                    text TEXT NOT NULL, task_type TEXT NOT NULL, success INTEGER NOT NULL, cost_usd REAL NOT NULL, created_ms INTEGER NOT NULL,
                    version INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tenant, agent, id));
                INSERT INTO semantic_memories VALUES ('acme', 'alice', 'lyon', zeroblob(3072), 'Our office in Lyon closes at six on Fridays', 'facts', 1, 0.001, 1700000000000, 1);
                """;
            create.ExecuteNonQuery();
        }

        using var embedder = new HashedNGramEmbedder();
        var (memory, index) = NewService(embedder);
        var stale = Assert.Single(await index.ListStaleAsync(10, CancellationToken.None));
        Assert.Equal(("lyon", ""), (stale.Id, stale.Embedder));
        Assert.Empty((await RecallAsync(memory, Lyon)).Memories);

        Assert.True(await index.ReplaceStaleAsync(stale, await memory.EmbedAsync(stale.Text, CancellationToken.None), CancellationToken.None));
        Assert.False(await index.ReplaceStaleAsync(stale, await memory.EmbedAsync(stale.Text, CancellationToken.None), CancellationToken.None));
        var match = Assert.Single((await RecallAsync(memory, Lyon)).Memories);
        Assert.Equal(("lyon", "facts", 0.001), (match.Id, match.TaskType, match.CostUsd));
    }

    [Fact]
    public async Task A_memory_rewritten_after_it_was_listed_stale_keeps_what_its_writer_left()
    {
        using (var before = new HashedNGramEmbedder(768))
        {
            await RememberAsync(NewService(before).Memory, "lyon", Lyon);
        }

        using var after = new HashedNGramEmbedder(512);
        var (memory, index) = NewService(after);
        var stale = Assert.Single(await index.ListStaleAsync(10, CancellationToken.None));
        await RememberAsync(memory, "lyon", "Our office in Lyon now closes at five on Fridays");

        Assert.False(await index.ReplaceStaleAsync(stale, await memory.EmbedAsync(stale.Text, CancellationToken.None), CancellationToken.None));
        Assert.Contains("five", Assert.Single((await RecallAsync(memory, "Lyon office Friday")).Memories).Text, StringComparison.Ordinal);
    }

    private (MemoryService Memory, InProcessVectorIndex Index) NewService(HashedNGramEmbedder embedder)
    {
        var index = new InProcessVectorIndex(new SqliteDatabase(_folder.File("memory.db"), InProcessVectorIndex.Schema), _folder.Path, Embedders.IdOf(embedder));
        var memory = new MemoryService(
            new SqliteWorkingMemoryStore(new SqliteDatabase(_folder.File("working.db"), SqliteWorkingMemoryStore.Schema), _time),
            index, new FileEpisodeStore(_folder.Path), embedder, Options.Create(new MemoryOptions()), _time);
        return (memory, index);
    }

    private static Task<RememberReply> RememberAsync(MemoryService memory, string id, string text) =>
        memory.RememberAsync(new RememberRequest { Agent = Alice, Id = id, Text = text, TaskType = "facts", Success = true, CostUsd = 0.001 }, CancellationToken.None);

    private static Task<RecallReply> RecallAsync(MemoryService memory, string query) =>
        memory.RecallAsync(new RecallRequest { Agent = Alice, Query = query, TopK = 3, MinSimilarity = 0.1 }, CancellationToken.None);
}
