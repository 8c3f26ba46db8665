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

    private InProcessVectorIndex NewIndex() =>
        new(new SqliteDatabase(_folder.File("memory.db"), InProcessVectorIndex.Schema));

    private static VectorRecord Record(string id, AgentScope scope, float[] vector, string text = "some text") =>
        new(id, scope, vector, text, "facts", Success: true, CostUsd: 0.001, DateTimeOffset.UnixEpoch);

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
