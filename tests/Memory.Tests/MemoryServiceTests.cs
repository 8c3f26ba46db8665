using PersistentAgents.Embeddings;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts.V1;
using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Memory.Tests;

public sealed class MemoryServiceTests : IDisposable
{
    private const string Invoices = "Invoices above ten thousand euros need two approvals from the finance team before payment";
    private static readonly AgentRef Alice = new() { Tenant = "acme", Agent = "alice" };
    private readonly TempFolder _folder = new();
    private readonly HashedNGramEmbedder _embedder = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose()
    {
        _embedder.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public async Task Remembering_a_near_duplicate_refreshes_the_existing_memory()
    {
        var memory = NewService(new MemoryOptions());
        var first = await RememberAsync(memory, "m1", Invoices);
        await RememberAsync(memory, "m2", "The legal team meets every Tuesday morning");

        // Same words, different case, punctuation and spacing: a duplicate at the default threshold (0.97).
        var again = await RememberAsync(memory, "m3", "INVOICES above ten thousand euros need two approvals   from the finance team, before payment!");

        Assert.Equal("m1", first.Id);
        Assert.Equal("m1", again.Id);
        var usage = await memory.GetUsageAsync(new GetMemoryUsageRequest { Agent = Alice }, CancellationToken.None);
        Assert.Equal(2, usage.SemanticMemories);
        var recalled = await memory.RecallAsync(new RecallRequest { Agent = Alice, Query = Invoices, TopK = 5, MinSimilarity = 0.9 }, CancellationToken.None);
        Assert.StartsWith("INVOICES", Assert.Single(recalled.Memories).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lower_duplicate_threshold_merges_a_reworded_memory_but_not_a_different_one()
    {
        var memory = NewService(new MemoryOptions { DuplicateSimilarity = 0.9 });
        await RememberAsync(memory, "m1", Invoices);

        // Only a function word and punctuation apart: the meaning guard lets it refresh the first.
        var reworded = await RememberAsync(memory, "m2", "The invoices above ten thousand euros need two approvals from the finance team, before payment.");
        var different = await RememberAsync(memory, "m3", "Invoices below one hundred euros can be paid by card");

        Assert.Equal("m1", reworded.Id);
        Assert.Equal("m3", different.Id);
        Assert.Equal(2, (await memory.GetUsageAsync(new GetMemoryUsageRequest { Agent = Alice }, CancellationToken.None)).SemanticMemories);
    }

    [Fact]
    public async Task Two_facts_one_digit_or_one_not_apart_are_both_kept_however_similar_their_vectors()
    {
        // Any threshold below 1 takes these as near-duplicates by vector; the meaning guard keeps them apart.
        var memory = NewService(new MemoryOptions { DuplicateSimilarity = 0.5 });
        await RememberAsync(memory, "m1", "Order 4471 was cancelled by the customer on Monday");
        var otherOrder = await RememberAsync(memory, "m2", "Order 4417 was cancelled by the customer on Monday");
        var negated = await RememberAsync(memory, "m3", "Order 4471 was not cancelled by the customer on Monday");

        Assert.Equal(("m2", "m3"), (otherOrder.Id, negated.Id));
        Assert.Equal(3, (await memory.GetUsageAsync(new GetMemoryUsageRequest { Agent = Alice }, CancellationToken.None)).SemanticMemories);
    }

    [Fact]
    public async Task Recall_finds_the_remembered_memory_for_a_similar_query()
    {
        var memory = NewService(new MemoryOptions());
        await RememberAsync(memory, "lyon", "Our office in Lyon closes at six on Fridays");
        await RememberAsync(memory, "invoices", Invoices);
        await RememberAsync(memory, "legal", "The legal team meets every Tuesday morning");

        var reply = await memory.RecallAsync(
            new RecallRequest { Agent = Alice, Query = "When does the office in Lyon close on Fridays?", TopK = 2, MinSimilarity = 0.2 },
            CancellationToken.None);

        var best = reply.Memories[0];
        Assert.Equal("lyon", best.Id);
        Assert.Equal("Our office in Lyon closes at six on Fridays", best.Text);
        Assert.Equal("facts", best.TaskType);
        Assert.True(best.Similarity > 0.4, $"similarity {best.Similarity:F3}");
        Assert.All(reply.Memories.Skip(1), m => Assert.True(m.Similarity < best.Similarity));
    }

    [Fact]
    public async Task Recall_does_not_reach_another_agents_memories()
    {
        var memory = NewService(new MemoryOptions());
        await RememberAsync(memory, "lyon", "Our office in Lyon closes at six on Fridays");

        var bob = await memory.RecallAsync(
            new RecallRequest { Agent = new AgentRef { Tenant = "acme", Agent = "bob" }, Query = "Our office in Lyon closes at six on Fridays", TopK = 5 },
            CancellationToken.None);

        Assert.Empty(bob.Memories);
    }

    private MemoryService NewService(MemoryOptions options) => new(
        new SqliteWorkingMemoryStore(new SqliteDatabase(_folder.File("working.db"), SqliteWorkingMemoryStore.Schema), _time),
        new InProcessVectorIndex(new SqliteDatabase(_folder.File("semantic.db"), InProcessVectorIndex.Schema), _folder.Path, Embedders.IdOf(_embedder)),
        new FileEpisodeStore(_folder.Path),
        _embedder,
        Options.Create(options),
        _time);

    private static Task<RememberReply> RememberAsync(MemoryService memory, string id, string text) =>
        memory.RememberAsync(new RememberRequest { Agent = Alice, Id = id, Text = text, TaskType = "facts", Success = true, CostUsd = 0.001 }, CancellationToken.None);
}
