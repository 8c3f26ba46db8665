using Microsoft.Extensions.Time.Testing;
using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Memory.Tests;

public sealed class InProcessVectorIndexTests : IDisposable
{
    private static readonly AgentScope Alice = new("acme", "alice");
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Search_returns_the_top_k_most_similar_first()
    {
        var index = NewIndex();
        foreach (var degrees in new[] { 50, 10, 89, 30, 70 })
        {
            await index.UpsertAsync(Record($"at-{degrees}", Alice, AtAngle(degrees)), CancellationToken.None);
        }

        var matches = await index.SearchAsync(Alice, AtAngle(0), topK: 3, minSimilarity: -1, VectorFilter.None, CancellationToken.None);

        Assert.Equal(["at-10", "at-30", "at-50"], matches.Select(m => m.Record.Id));
        Assert.Equal(Math.Cos(Math.PI * 10 / 180), matches[0].Similarity, tolerance: 1e-5);
        Assert.True(matches[0].Similarity > matches[1].Similarity && matches[1].Similarity > matches[2].Similarity);
    }

    [Fact]
    public async Task Search_leaves_out_records_below_the_similarity_floor()
    {
        var index = NewIndex();
        foreach (var degrees in new[] { 10, 40, 65, 80 })
        {
            await index.UpsertAsync(Record($"at-{degrees}", Alice, AtAngle(degrees)), CancellationToken.None);
        }

        // cos 60° = 0.5: the records at 65° and 80° are under the floor even though k would allow them.
        var matches = await index.SearchAsync(Alice, AtAngle(0), topK: 10, minSimilarity: 0.5, VectorFilter.None, CancellationToken.None);

        Assert.Equal(["at-10", "at-40"], matches.Select(m => m.Record.Id));
        Assert.All(matches, m => Assert.True(m.Similarity >= 0.5));
    }

    [Fact]
    public async Task Search_never_crosses_agents_or_tenants()
    {
        var index = NewIndex();
        var vector = AtAngle(0);
        var sameAgentOtherTenant = new AgentScope("globex", "alice");
        var otherAgentSameTenant = new AgentScope("acme", "bob");
        await index.UpsertAsync(Record("shared-id", sameAgentOtherTenant, vector, "the secret plan"), CancellationToken.None);
        await index.UpsertAsync(Record("shared-id", otherAgentSameTenant, vector, "the secret plan"), CancellationToken.None);

        Assert.Empty(await index.SearchAsync(Alice, vector, 10, minSimilarity: -1, VectorFilter.None, CancellationToken.None));
        Assert.Equal(0, (await index.UsageAsync(Alice, CancellationToken.None)).Items);

        await index.UpsertAsync(Record("alice-own", Alice, vector, "the secret plan"), CancellationToken.None);
        var matches = await index.SearchAsync(Alice, vector, 10, minSimilarity: -1, VectorFilter.None, CancellationToken.None);

        var match = Assert.Single(matches);
        Assert.Equal("alice-own", match.Record.Id);
        Assert.Equal(Alice, match.Record.Scope);
        Assert.Equal("shared-id", Assert.Single(await index.SearchAsync(otherAgentSameTenant, vector, 10, -1, VectorFilter.None, CancellationToken.None)).Record.Id);
        Assert.Equal(otherAgentSameTenant, Assert.Single(await index.SearchAsync(otherAgentSameTenant, vector, 10, -1, VectorFilter.None, CancellationToken.None)).Record.Scope);
    }

    [Fact]
    public async Task Upserting_an_existing_id_replaces_the_record()
    {
        var index = NewIndex();
        await index.UpsertAsync(Record("m1", Alice, AtAngle(0), "old text"), CancellationToken.None);
        await index.UpsertAsync(Record("m1", Alice, AtAngle(90), "new text"), CancellationToken.None);

        Assert.Equal(1, (await index.UsageAsync(Alice, CancellationToken.None)).Items);
        Assert.Empty(await index.SearchAsync(Alice, AtAngle(0), 10, minSimilarity: 0.5, VectorFilter.None, CancellationToken.None));
        var match = Assert.Single(await index.SearchAsync(Alice, AtAngle(90), 10, minSimilarity: 0.5, VectorFilter.None, CancellationToken.None));
        Assert.Equal("new text", match.Record.Text);

        var reloaded = Assert.Single(await NewIndex().SearchAsync(Alice, AtAngle(90), 10, minSimilarity: 0.5, VectorFilter.None, CancellationToken.None));
        Assert.Equal("new text", reloaded.Record.Text);
    }

    [Fact]
    public async Task A_new_index_over_the_same_database_finds_the_records_again()
    {
        var created = new DateTimeOffset(2025, 3, 4, 5, 6, 7, 890, TimeSpan.Zero);
        var written = new VectorRecord("m1", Alice, AtAngle(20), "Lyon closes at six", "facts", Success: true, CostUsd: 0.0125, created);
        var first = NewIndex();
        await first.UpsertAsync(written, CancellationToken.None);
        await first.UpsertAsync(Record("m2", new AgentScope("acme", "bob"), AtAngle(20)), CancellationToken.None);

        var restarted = NewIndex();
        var match = Assert.Single(await restarted.SearchAsync(Alice, AtAngle(20), 5, 0.9, VectorFilter.None, CancellationToken.None));

        Assert.Equal(1, (await restarted.UsageAsync(Alice, CancellationToken.None)).Items);
        Assert.Equal(1.0, match.Similarity, tolerance: 1e-5);
        Assert.Equal(written.Id, match.Record.Id);
        Assert.Equal(written.Scope, match.Record.Scope);
        Assert.Equal(written.Text, match.Record.Text);
        Assert.Equal(written.TaskType, match.Record.TaskType);
        Assert.Equal(written.Success, match.Record.Success);
        Assert.Equal(written.CostUsd, match.Record.CostUsd);
        Assert.Equal(written.Created, match.Record.Created);
        Assert.Equal(written.Vector.ToArray(), match.Record.Vector.ToArray());
    }

    [Fact]
    public async Task Past_the_resident_limit_the_least_recently_used_agent_is_unloaded_and_found_again_on_its_next_use()
    {
        var index = NewIndex(limits: new MemoryOptions { ResidentAgents = 3 });
        var agents = Enumerable.Range(0, 5).Select(i => new AgentScope("acme", $"agent-{i}")).ToList();
        foreach (var (agent, i) in agents.Select((a, i) => (a, i)))
        {
            await index.UpsertAsync(Record($"m{i}", agent, AtAngle(10 * i), text: $"memory of {agent.Agent}"), CancellationToken.None);
            Assert.True(index.ResidentPartitions <= 3, $"{index.ResidentPartitions} partitions resident after {i + 1} agents");
        }

        Assert.Equal(3, index.ResidentPartitions);
        // agent-0 was unloaded first; its memory is in SQLite and comes back with its partition.
        var match = Assert.Single(await index.SearchAsync(agents[0], AtAngle(0), 5, 0.99, VectorFilter.None, CancellationToken.None));
        Assert.Equal(("m0", "memory of agent-0"), (match.Record.Id, match.Record.Text));
        Assert.Equal(3, index.ResidentPartitions);
        // Whichever agents are used next, the count stays at the limit.
        await index.UpsertAsync(Record("m4b", agents[4], AtAngle(45)), CancellationToken.None);
        await index.UpsertAsync(Record("m3b", agents[3], AtAngle(45)), CancellationToken.None);
        Assert.Equal(2, (await index.UsageAsync(agents[3], CancellationToken.None)).Items);
        Assert.Equal(3, index.ResidentPartitions);
    }

    [Fact]
    public async Task An_unloaded_graph_is_snapshotted_so_its_next_load_replays_nothing()
    {
        var random = new Random(5);
        var index = NewIndex(graphThreshold: 50, limits: new MemoryOptions { ResidentAgents = 1 });
        var vectors = Enumerable.Range(0, 120).Select(_ => RandomUnit(random)).ToList();
        for (var i = 0; i < vectors.Count; i++)
        {
            await index.UpsertAsync(Record($"m{i}", Alice, vectors[i]), CancellationToken.None);
        }

        await index.UpsertAsync(Record("b", new AgentScope("acme", "bob"), RandomUnit(random)), CancellationToken.None);
        Assert.Equal(1, index.ResidentPartitions);

        Assert.Equal("m77", (await index.SearchAsync(Alice, vectors[77], 1, 0.99, VectorFilter.None, CancellationToken.None)).Single().Record.Id);
        Assert.Equal((1, 0), index.Restored);
        Assert.Equal(120, (await index.UsageAsync(Alice, CancellationToken.None)).Items);
    }

    [Fact]
    public async Task A_partition_unused_for_the_idle_time_is_unloaded()
    {
        var clock = new FakeTimeProvider();
        var index = NewIndex(limits: new MemoryOptions { IdleUnloadAfter = TimeSpan.FromMinutes(30) }, timeProvider: clock);
        var bob = new AgentScope("acme", "bob");
        await index.UpsertAsync(Record("a", Alice, AtAngle(0)), CancellationToken.None);
        clock.Advance(TimeSpan.FromMinutes(20));
        await index.UpsertAsync(Record("b", bob, AtAngle(0)), CancellationToken.None);
        clock.Advance(TimeSpan.FromMinutes(11));

        Assert.Equal(1, index.UnloadIdle());

        Assert.Equal(1, index.ResidentPartitions);
        Assert.Equal("a", Assert.Single(await index.SearchAsync(Alice, AtAngle(0), 5, 0.99, VectorFilter.None, CancellationToken.None)).Record.Id);
        Assert.Equal(2, index.ResidentPartitions);
    }

    [Fact]
    public async Task An_agent_keeps_at_most_the_configured_memories_the_oldest_are_deleted_from_ram_and_sqlite()
    {
        var limits = new MemoryOptions { MaxSemanticMemoriesPerAgent = 10 };
        var index = NewIndex(limits: limits);
        for (var i = 0; i < 15; i++)
        {
            await index.UpsertAsync(Record($"m{i}", Alice, AtAngle(i), created: DateTimeOffset.UnixEpoch.AddMinutes(i)), CancellationToken.None);
        }

        Assert.Equal(10, (await index.UsageAsync(Alice, CancellationToken.None)).Items);
        Assert.Null(await index.GetAsync(Alice, "m4", CancellationToken.None));
        Assert.NotNull(await index.GetAsync(Alice, "m5", CancellationToken.None));

        var restarted = NewIndex(limits: limits);
        var all = await restarted.SearchAsync(Alice, AtAngle(0), 100, -1, VectorFilter.None, CancellationToken.None);
        Assert.Equal(Enumerable.Range(5, 10).Select(i => $"m{i}").Order(), all.Select(m => m.Record.Id).Order());
    }

    [Fact]
    public async Task A_graph_whose_memories_keep_being_replaced_is_rebuilt_compact_and_still_finds_the_live_ones()
    {
        var random = new Random(3);
        var index = NewIndex(graphThreshold: 50, limits: new MemoryOptions { MaxSemanticMemoriesPerAgent = 60 });
        var vectors = Enumerable.Range(0, 400).Select(_ => RandomUnit(random)).ToList();
        for (var i = 0; i < vectors.Count; i++)
        {
            await index.UpsertAsync(Record($"m{i}", Alice, vectors[i], created: DateTimeOffset.UnixEpoch.AddSeconds(i)), CancellationToken.None);
        }

        Assert.Equal(60, (await index.UsageAsync(Alice, CancellationToken.None)).Items);
        Assert.Equal("m399", (await index.SearchAsync(Alice, vectors[399], 1, 0.99, VectorFilter.None, CancellationToken.None)).Single().Record.Id);
        Assert.Empty(await index.SearchAsync(Alice, vectors[100], 1, 0.99, VectorFilter.None, CancellationToken.None));
    }

    private InProcessVectorIndex NewIndex(int graphThreshold = InProcessVectorIndex.DefaultGraphThreshold, MemoryOptions? limits = null, TimeProvider? timeProvider = null) =>
        new(new SqliteDatabase(_folder.File("memory.db"), InProcessVectorIndex.Schema), _folder.Path, "hashed-ngrams@768", graphThreshold, limits, timeProvider);

    private static float[] RandomUnit(Random random, int dimensions = 32)
    {
        var vector = new float[dimensions];
        for (var i = 0; i < dimensions; i++)
        {
            vector[i] = (float)(random.NextDouble() - 0.5);
        }

        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        return vector.Select(v => v / norm).ToArray();
    }

    [Fact]
    public async Task A_large_partition_searched_through_its_graph_finds_what_exact_search_finds()
    {
        var random = new Random(7);
        var vectors = Enumerable.Range(0, 400).Select(_ => RandomUnit(random)).ToList();
        var index = NewIndex(graphThreshold: 50);
        for (var i = 0; i < vectors.Count; i++)
        {
            await index.UpsertAsync(Record($"m{i}", Alice, vectors[i], task: i % 2 == 0 ? "even" : "odd"), CancellationToken.None);
        }

        var hits = 0;
        for (var q = 0; q < 50; q++)
        {
            var query = RandomUnit(random);
            var exact = vectors.Select((v, i) => (Id: $"m{i}", Similarity: v.Zip(query, (a, b) => a * b).Sum())).MaxBy(x => x.Similarity).Id;
            var found = await index.SearchAsync(Alice, query, 1, -1, VectorFilter.None, CancellationToken.None);
            hits += found.Single().Record.Id == exact ? 1 : 0;

            var filtered = await index.SearchAsync(Alice, query, 5, -1, new VectorFilter("odd"), CancellationToken.None);
            Assert.Equal(5, filtered.Count);
            Assert.All(filtered, m => Assert.Equal("odd", m.Record.TaskType));
        }

        Assert.True(hits >= 45, $"graph search agreed with exact search on {hits} of 50 queries");
        Assert.Equal(400, (await index.UsageAsync(Alice, CancellationToken.None)).Items);
    }

    [Fact]
    public async Task A_restart_loads_the_graph_snapshot_and_replays_only_later_changes()
    {
        var random = new Random(11);
        var index = NewIndex(graphThreshold: 50);
        for (var i = 0; i < 300; i++)
        {
            await index.UpsertAsync(Record($"m{i}", Alice, RandomUnit(random)), CancellationToken.None);
        }

        Assert.Equal(1, index.SaveSnapshots());
        Assert.Equal(0, index.SaveSnapshots());

        // After the snapshot, and never saved (as after a crash): five new, one replaced, three deleted.
        var late = Enumerable.Range(0, 5).Select(_ => RandomUnit(random)).ToList();
        for (var i = 0; i < late.Count; i++)
        {
            await index.UpsertAsync(Record($"late{i}", Alice, late[i]), CancellationToken.None);
        }

        var replaced = RandomUnit(random);
        await index.UpsertAsync(Record("m10", Alice, replaced, text: "replaced"), CancellationToken.None);
        foreach (var id in new[] { "m1", "m2", "m3" })
        {
            Assert.True(await index.DeleteAsync(Alice, id, CancellationToken.None));
        }

        var restarted = NewIndex(graphThreshold: 50);
        Assert.Equal((0, 0), restarted.Restored);
        Assert.Equal(302, (await restarted.UsageAsync(Alice, CancellationToken.None)).Items);
        Assert.Equal((1, 6), restarted.Restored);
        Assert.Equal("late3", (await restarted.SearchAsync(Alice, late[3], 1, 0.99, VectorFilter.None, CancellationToken.None)).Single().Record.Id);
        var m10 = (await restarted.SearchAsync(Alice, replaced, 1, 0.99, VectorFilter.None, CancellationToken.None)).Single();
        Assert.Equal(("m10", "replaced"), (m10.Record.Id, m10.Record.Text));
        var around = await restarted.SearchAsync(Alice, replaced, 400, -1, VectorFilter.None, CancellationToken.None);
        Assert.Equal(302, around.Count);
        Assert.Single(around, m => m.Record.Id == "m10");
        Assert.All(around, m => Assert.NotEqual("", m.Record.Text));
        Assert.Null(await restarted.GetAsync(Alice, "m2", CancellationToken.None));
        Assert.Equal("some text", (await restarted.GetAsync(Alice, "m200", CancellationToken.None))!.Text);
    }

    private static VectorRecord Record(string id, AgentScope scope, float[] vector, string text = "some text", string task = "facts", DateTimeOffset created = default) =>
        new(id, scope, vector, text, task, Success: true, CostUsd: 0.001, created == default ? DateTimeOffset.UnixEpoch : created);

    /// <summary>A unit vector in 8 dimensions whose cosine with <c>AtAngle(0)</c> is cos(<paramref name="degrees"/>).</summary>
    private static float[] AtAngle(double degrees)
    {
        var radians = degrees * Math.PI / 180;
        var vector = new float[8];
        vector[0] = (float)Math.Cos(radians);
        vector[1] = (float)Math.Sin(radians);
        return vector;
    }
}
