using PersistentAgents.Embeddings;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Dapr;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// PgVectorStore through the sidecar double's bindings.postgresql, whose SQL runs on a real PostgreSQL with
/// pgvector (PGlite): the exact binding requests, and real results of the adapter's own queries.
/// </summary>
[Collection(PgliteTests.Name)]
public sealed class PgVectorStoreContractTests(PgliteServer postgres) : IAsyncLifetime
{
    private const int Dimensions = HashedNGramEmbedder.DefaultDimensions;
    private static readonly DateTimeOffset Created = new(2026, 3, 1, 12, 30, 15, 123, 456, TimeSpan.Zero);
    private readonly AgentScope _scope = new($"t{Guid.NewGuid():N}", "email-router");
    private SidecarDouble _sidecar = null!;
    private PgVectorStore _store = null!;

    public async Task InitializeAsync()
    {
        _sidecar = await SidecarDouble.StartAsync(new FakeTimeProvider());
        _sidecar.AddBinding(DaprComponents.SemanticMemory, postgres.Binding);
        _store = new PgVectorStore(_sidecar.Client);
    }

    public async Task DisposeAsync() => await _sidecar.DisposeAsync();

    /// <summary>A unit vector at <paramref name="degrees"/> from axis 0 in the plane of axes 0 and <paramref name="plane"/>: its cosine with axis 0 is cos(degrees).</summary>
    private static float[] At(double degrees, int plane = 1)
    {
        var vector = new float[Dimensions];
        vector[0] = (float)Math.Cos(degrees * Math.PI / 180);
        vector[plane] = (float)Math.Sin(degrees * Math.PI / 180);
        return vector;
    }

    private static VectorRecord Record(AgentScope scope, string id, float[] vector, string text, string taskType = "email_routing", bool success = true) =>
        new(id, scope, vector, text, taskType, success, 0.00125, Created);

    private List<BindingCall> Calls => _sidecar.BindingCalls.Where(c => c.Name == DaprComponents.SemanticMemory).ToList();

    [Fact]
    public async Task The_binding_receives_the_schema_once_then_an_upsert_with_sql_and_json_params()
    {
        await _store.UpsertAsync(Record(_scope, "m1", At(0), "invoice 4471"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "m2", At(10), "invoice 4472"), CancellationToken.None);

        var calls = Calls;
        Assert.Equal(6, calls.Count);
        Assert.All(calls, c => Assert.Equal("exec", c.Operation));
        Assert.All(calls, c => Assert.Equal("ok", c.Outcome));
        Assert.Equal("CREATE EXTENSION IF NOT EXISTS vector", calls[0].Metadata["sql"]);
        Assert.Contains("CREATE TABLE IF NOT EXISTS agent_memories", calls[1].Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("embedding vector(768) NOT NULL", calls[1].Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("PRIMARY KEY (tenant, agent, id)", calls[1].Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("USING hnsw (embedding vector_cosine_ops)", calls[2].Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("ALTER DATABASE %I SET hnsw.iterative_scan", calls[3].Metadata["sql"], StringComparison.Ordinal);
        Assert.All(calls.Take(4), c => Assert.False(c.Metadata.ContainsKey("params")));

        var upsert = calls[4];
        Assert.Equal(PgVectorStore.UpsertSql, upsert.Metadata["sql"]);
        Assert.Contains("ON CONFLICT (tenant, agent, id) DO UPDATE SET", upsert.Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("$4::vector", upsert.Metadata["sql"], StringComparison.Ordinal);
        var parameters = JsonDocument.Parse(upsert.Metadata["params"]).RootElement;
        Assert.Equal(JsonValueKind.Array, parameters.ValueKind);
        Assert.Equal(9, parameters.GetArrayLength());
        Assert.Equal(_scope.Tenant, parameters[0].GetString());
        Assert.Equal(_scope.Agent, parameters[1].GetString());
        Assert.Equal("m1", parameters[2].GetString());
        var literal = parameters[3].GetString()!;
        Assert.StartsWith("[1,0,0,", literal, StringComparison.Ordinal);
        Assert.Equal(Dimensions, literal.Split(',').Length);
        Assert.Equal("invoice 4471", parameters[4].GetString());
        Assert.Equal("email_routing", parameters[5].GetString());
        Assert.True(parameters[6].GetBoolean());
        Assert.Equal(0.00125, parameters[7].GetDouble());
        Assert.Equal("2026-03-01T12:30:15.123456Z", parameters[8].GetString());
        Assert.Empty(_sidecar.UnservedPaths);
    }

    [Fact]
    public async Task A_search_is_one_query_ordered_by_cosine_distance_with_floor_filters_and_limit_as_params()
    {
        await _store.UpsertAsync(Record(_scope, "m1", At(0), "x"), CancellationToken.None);

        await _store.SearchAsync(_scope, At(0), 3, 0.5, new VectorFilter("email_routing", SuccessfulOnly: true), CancellationToken.None);
        await _store.SearchAsync(_scope, At(0), 5, 0.25, VectorFilter.None, CancellationToken.None);

        var searches = Calls.Where(c => c.Operation == "query").ToList();
        Assert.Equal(2, searches.Count);
        var sql = searches[0].Metadata["sql"];
        Assert.Equal(PgVectorStore.SearchSql, sql);
        Assert.Contains("1 - (embedding <=> $3::vector) AS similarity", sql, StringComparison.Ordinal);
        Assert.Contains("WHERE tenant = $1::text AND agent = $2::text", sql, StringComparison.Ordinal);
        Assert.Contains("ORDER BY embedding <=> $3::vector", sql, StringComparison.Ordinal);
        Assert.Contains("LIMIT $7::integer", sql, StringComparison.Ordinal);
        var filtered = JsonDocument.Parse(searches[0].Metadata["params"]).RootElement;
        Assert.Equal(7, filtered.GetArrayLength());
        Assert.Equal("email_routing", filtered[3].GetString());
        Assert.True(filtered[4].GetBoolean());
        Assert.Equal(0.5, filtered[5].GetDouble());
        Assert.Equal(3, filtered[6].GetInt32());
        var unfiltered = JsonDocument.Parse(searches[1].Metadata["params"]).RootElement;
        Assert.Equal(JsonValueKind.Null, unfiltered[3].ValueKind);
        Assert.False(unfiltered[4].GetBoolean());
    }

    [Fact]
    public async Task Search_returns_the_top_k_above_the_floor_most_similar_first_from_pgvector()
    {
        foreach (var (id, degrees) in new[] { ("far", 85.0), ("near", 10.0), ("mid", 60.0), ("close", 30.0), ("exact", 0.0) })
        {
            await _store.UpsertAsync(Record(_scope, id, At(degrees, plane: 2), $"memory {id}"), CancellationToken.None);
        }

        var top3 = await _store.SearchAsync(_scope, At(0), 3, 0.0, VectorFilter.None, CancellationToken.None);
        Assert.Equal(["exact", "near", "close"], top3.Select(m => m.Record.Id));
        Assert.Equal(1.0, top3[0].Similarity, 5);
        Assert.Equal(Math.Cos(10 * Math.PI / 180), top3[1].Similarity, 5);
        Assert.Equal(Math.Cos(30 * Math.PI / 180), top3[2].Similarity, 5);

        // cos 60° = 0.5 is at the floor (kept), cos 85° ≈ 0.087 below it.
        var aboveFloor = await _store.SearchAsync(_scope, At(0), 10, 0.49, VectorFilter.None, CancellationToken.None);
        Assert.Equal(["exact", "near", "close", "mid"], aboveFloor.Select(m => m.Record.Id));
        Assert.Empty(await _store.SearchAsync(_scope, At(90), 10, 0.999, VectorFilter.None, CancellationToken.None));
        Assert.Empty(await _store.SearchAsync(_scope, new float[3], 10, 0, VectorFilter.None, CancellationToken.None));
    }

    [Fact]
    public async Task Search_applies_task_type_and_success_filters_in_sql()
    {
        await _store.UpsertAsync(Record(_scope, "routing-ok", At(5), "a", "email_routing", success: true), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "routing-failed", At(1), "b", "email_routing", success: false), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "legal-ok", At(2), "c", "legal_triage", success: true), CancellationToken.None);

        Assert.Equal(["routing-failed", "routing-ok"],
            (await _store.SearchAsync(_scope, At(0), 10, 0, new VectorFilter("email_routing"), CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Equal(["legal-ok", "routing-ok"],
            (await _store.SearchAsync(_scope, At(0), 10, 0, new VectorFilter(SuccessfulOnly: true), CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Equal(["routing-ok"],
            (await _store.SearchAsync(_scope, At(0), 10, 0, new VectorFilter("email_routing", SuccessfulOnly: true), CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Empty(await _store.SearchAsync(_scope, At(0), 10, 0, new VectorFilter("unknown"), CancellationToken.None));
    }

    [Fact]
    public async Task Identical_vectors_and_ids_of_other_agents_and_tenants_are_never_seen()
    {
        var sameTenant = _scope with { Agent = "billing" };
        var otherTenant = _scope with { Tenant = _scope.Tenant + "x" };
        foreach (var scope in new[] { _scope, sameTenant, otherTenant })
        {
            await _store.UpsertAsync(Record(scope, "shared-id", At(0), $"{scope.Tenant}/{scope.Agent}"), CancellationToken.None);
        }

        foreach (var scope in new[] { _scope, sameTenant, otherTenant })
        {
            var match = Assert.Single(await _store.SearchAsync(scope, At(0), 10, 0, VectorFilter.None, CancellationToken.None));
            Assert.Equal($"{scope.Tenant}/{scope.Agent}", match.Record.Text);
            Assert.Equal(scope, match.Record.Scope);
            Assert.Equal($"{scope.Tenant}/{scope.Agent}", (await _store.GetAsync(scope, "shared-id", CancellationToken.None))!.Text);
            Assert.Equal(1, (await _store.UsageAsync(scope, CancellationToken.None)).Items);
        }

        Assert.True(await _store.DeleteAsync(sameTenant, "shared-id", CancellationToken.None));
        Assert.NotNull(await _store.GetAsync(_scope, "shared-id", CancellationToken.None));
        Assert.NotNull(await _store.GetAsync(otherTenant, "shared-id", CancellationToken.None));
        Assert.Equal(1, await _store.PurgeAsync(otherTenant, CancellationToken.None));
        Assert.NotNull(await _store.GetAsync(_scope, "shared-id", CancellationToken.None));
    }

    [Fact]
    public async Task Upsert_replaces_a_memory_and_get_returns_exactly_what_was_stored()
    {
        var original = Record(_scope, "m", At(20), "first text");
        await _store.UpsertAsync(original, CancellationToken.None);
        var replacement = new VectorRecord("m", _scope, At(40, plane: 3), "second text ✓", "legal_triage", false, 0.5, Created.AddDays(1));
        await _store.UpsertAsync(replacement, CancellationToken.None);

        var rows = await postgres.Binding.QueryDirectAsync("SELECT count(*) FROM agent_memories WHERE tenant = $1 AND agent = $2", _scope.Tenant, _scope.Agent);
        Assert.Equal(1L, rows[0][0]);

        var stored = await _store.GetAsync(_scope, "m", CancellationToken.None);
        Assert.NotNull(stored);
        Assert.Equal(replacement.Text, stored.Text);
        Assert.Equal(replacement.TaskType, stored.TaskType);
        Assert.False(stored.Success);
        Assert.Equal(0.5, stored.CostUsd);
        Assert.Equal(replacement.Created, stored.Created);
        Assert.Equal(replacement.Vector.ToArray(), stored.Vector.ToArray());
        Assert.Null(await _store.GetAsync(_scope, "absent", CancellationToken.None));

        // Bytes as the embedded index counts them: 4 per dimension plus the UTF-8 text.
        Assert.Equal(new TierUsage(1, (4 * Dimensions) + Encoding.UTF8.GetByteCount(replacement.Text)), await _store.UsageAsync(_scope, CancellationToken.None));
    }

    [Fact]
    public async Task Delete_and_purge_report_what_they_removed_through_rows_affected()
    {
        await _store.UpsertAsync(Record(_scope, "a", At(0), "a"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "b", At(1), "b"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "c", At(2), "c"), CancellationToken.None);

        Assert.True(await _store.DeleteAsync(_scope, "a", CancellationToken.None));
        Assert.False(await _store.DeleteAsync(_scope, "a", CancellationToken.None));
        var delete = Calls.First(c => c.Metadata["sql"] == PgVectorStore.DeleteSql);
        Assert.Equal($"[\"{_scope.Tenant}\",\"{_scope.Agent}\",\"a\"]", delete.Metadata["params"]);

        Assert.Equal(2, await _store.PurgeAsync(_scope, CancellationToken.None));
        Assert.Equal(0, await _store.PurgeAsync(_scope, CancellationToken.None));
        Assert.Equal(new TierUsage(0, 0), await _store.UsageAsync(_scope, CancellationToken.None));
        Assert.Contains(Calls, c => c.Operation == "exec" && c.Metadata["sql"] == PgVectorStore.PurgeSql);
    }

    [Fact]
    public async Task The_schema_is_idempotent_and_has_the_hnsw_cosine_index()
    {
        // A second instance (another replica of the memory service) runs the schema again.
        var second = new PgVectorStore(_sidecar.Client);
        await second.UpsertAsync(Record(_scope, "m", At(0), "x"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "m", At(0), "y"), CancellationToken.None);

        var indexes = await postgres.Binding.QueryDirectAsync("SELECT indexdef FROM pg_indexes WHERE tablename = 'agent_memories'");
        Assert.Contains(indexes, row => ((string)row[0]!).Contains("USING hnsw (embedding vector_cosine_ops)", StringComparison.Ordinal));
        var extension = await postgres.Binding.QueryDirectAsync("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
        Assert.Single(extension);

        // Filtered HNSW scans keep going until k rows pass the tenant/agent filter (new sessions take it).
        var settings = await postgres.Binding.QueryDirectAsync("SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())");
        Assert.Contains(settings, row => ((string)row[0]!).Contains("hnsw.iterative_scan=strict_order", StringComparison.Ordinal));
        Assert.Equal("y", (await second.GetAsync(_scope, "m", CancellationToken.None))!.Text);
    }

    [Fact]
    public async Task Zero_vectors_whose_cosine_is_undefined_never_match()
    {
        await _store.UpsertAsync(Record(_scope, "zero", new float[Dimensions], "zero"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "unit", At(0), "unit"), CancellationToken.None);

        Assert.Equal(["unit"], (await _store.SearchAsync(_scope, At(0), 10, -1, VectorFilter.None, CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Empty(await _store.SearchAsync(_scope, new float[Dimensions], 10, -1, VectorFilter.None, CancellationToken.None));
    }

    [Fact]
    public async Task A_vector_of_the_wrong_length_is_refused_before_anything_is_sent()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _store.UpsertAsync(Record(_scope, "m", new float[3], "x"), CancellationToken.None));
        Assert.Empty(Calls);
    }
}
