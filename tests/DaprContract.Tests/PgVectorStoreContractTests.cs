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
public sealed class PgVectorStoreContractTests(PgliteDatabase postgres) : IAsyncLifetime
{
    private const int Dimensions = HashedNGramEmbedder.DefaultDimensions;
    private const string Hashed = "hashed-ngrams@768";
    // Another embedder with other dimensions, as after a change of model.
    private const string MiniLm = "all-MiniLM-L6-v2@384";
    private const int MiniLmDimensions = 384;
    private static readonly DateTimeOffset Created = new(2026, 3, 1, 12, 30, 15, 123, 456, TimeSpan.Zero);
    private readonly AgentScope _scope = new($"t{Guid.NewGuid():N}", "email-router");
    private SidecarDouble _sidecar = null!;
    private PgVectorStore _store = null!;

    public async Task InitializeAsync()
    {
        _sidecar = await SidecarDouble.StartAsync(new FakeTimeProvider());
        _sidecar.AddBinding(DaprComponents.SemanticMemory, postgres.Binding);
        _store = new PgVectorStore(_sidecar.Client, Hashed, Dimensions);
    }

    public async Task DisposeAsync() => await _sidecar.DisposeAsync();

    /// <summary>A unit vector at <paramref name="degrees"/> from axis 0 in the plane of axes 0 and <paramref name="plane"/>: its cosine with axis 0 is cos(degrees).</summary>
    private static float[] At(double degrees, int plane = 1, int dimensions = Dimensions)
    {
        var vector = new float[dimensions];
        vector[0] = (float)Math.Cos(degrees * Math.PI / 180);
        vector[plane] = (float)Math.Sin(degrees * Math.PI / 180);
        return vector;
    }

    private static VectorRecord Record(AgentScope scope, string id, float[] vector, string text, string taskType = "email_routing", bool success = true, DateTimeOffset? created = null) =>
        new(id, scope, vector, text, taskType, success, 0.00125, created ?? Created);

    private PgVectorStore MiniLmStore() => new(_sidecar.Client, MiniLm, MiniLmDimensions);

    /// <summary>The stale memories of this test's tenant: the table is shared with the other tests of the collection.</summary>
    private static async Task<List<StaleMemory>> StaleOfTenantAsync(PgVectorStore store, string tenant) =>
        (await store.ListStaleAsync(10_000, CancellationToken.None)).Where(m => m.Scope.Tenant == tenant).ToList();

    private List<BindingCall> Calls => _sidecar.BindingCalls.Where(c => c.Name == DaprComponents.SemanticMemory).ToList();

    [PgliteFact]
    public async Task The_binding_receives_the_schema_once_then_an_upsert_with_sql_and_json_params()
    {
        await _store.UpsertAsync(Record(_scope, "m1", At(0), "invoice 4471"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "m2", At(10), "invoice 4472"), CancellationToken.None);

        var calls = Calls;
        Assert.Equal(9, calls.Count);
        Assert.All(calls, c => Assert.Equal("exec", c.Operation));
        Assert.All(calls, c => Assert.Equal("ok", c.Outcome));
        Assert.Equal("CREATE EXTENSION IF NOT EXISTS vector", calls[0].Metadata["sql"]);
        Assert.Contains("CREATE TABLE IF NOT EXISTS agent_memories", calls[1].Metadata["sql"], StringComparison.Ordinal);
        // No dimensions on the column: vectors of several embedders share it during a change of model.
        Assert.Contains("embedding vector NOT NULL", calls[1].Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("embedder text NOT NULL DEFAULT ''", calls[1].Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("PRIMARY KEY (tenant, agent, id)", calls[1].Metadata["sql"], StringComparison.Ordinal);
        Assert.Equal("ALTER TABLE agent_memories ADD COLUMN IF NOT EXISTS embedder text NOT NULL DEFAULT ''", calls[2].Metadata["sql"]);
        Assert.Equal("DROP INDEX IF EXISTS agent_memories_embedding_hnsw", calls[3].Metadata["sql"]);
        Assert.Contains("ALTER COLUMN embedding TYPE vector", calls[4].Metadata["sql"], StringComparison.Ordinal);
        Assert.Matches("^agent_memories_hnsw_[0-9a-f]{16}$", _store.IndexName);
        Assert.Equal($"CREATE INDEX IF NOT EXISTS {_store.IndexName} ON agent_memories USING hnsw ((embedding::vector(768)) vector_cosine_ops) WHERE embedder = 'hashed-ngrams@768'",
            calls[5].Metadata["sql"]);
        Assert.Contains("ALTER DATABASE %I SET hnsw.iterative_scan", calls[6].Metadata["sql"], StringComparison.Ordinal);
        Assert.All(calls.Take(7), c => Assert.False(c.Metadata.ContainsKey("params")));

        var upsert = calls[7];
        Assert.Equal(PgVectorStore.UpsertSql, upsert.Metadata["sql"]);
        Assert.Contains("ON CONFLICT (tenant, agent, id) DO UPDATE SET", upsert.Metadata["sql"], StringComparison.Ordinal);
        Assert.Contains("$4::vector", upsert.Metadata["sql"], StringComparison.Ordinal);
        var parameters = JsonDocument.Parse(upsert.Metadata["params"]).RootElement;
        Assert.Equal(JsonValueKind.Array, parameters.ValueKind);
        Assert.Equal(10, parameters.GetArrayLength());
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
        Assert.Equal(Hashed, parameters[9].GetString());
        Assert.Empty(_sidecar.UnservedPaths);
    }

    [PgliteFact]
    public async Task A_search_is_one_query_ordered_by_cosine_distance_with_floor_filters_and_limit_as_params()
    {
        await _store.UpsertAsync(Record(_scope, "m1", At(0), "x"), CancellationToken.None);

        await _store.SearchAsync(_scope, At(0), 3, 0.5, new VectorFilter("email_routing", SuccessfulOnly: true), CancellationToken.None);
        await _store.SearchAsync(_scope, At(0), 5, 0.25, VectorFilter.None, CancellationToken.None);

        var searches = Calls.Where(c => c.Operation == "query").ToList();
        Assert.Equal(2, searches.Count);
        var sql = searches[0].Metadata["sql"];
        Assert.Equal(_store.SearchSql, sql);
        Assert.Contains("1 - (embedding::vector(768) <=> $3::vector(768)) AS similarity", sql, StringComparison.Ordinal);
        // The embedder as a literal and the index's cast expression: what lets the planner use the partial index.
        Assert.Contains("WHERE tenant = $1::text AND agent = $2::text AND embedder = 'hashed-ngrams@768'", sql, StringComparison.Ordinal);
        Assert.Contains("ORDER BY embedding::vector(768) <=> $3::vector(768)", sql, StringComparison.Ordinal);
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

    [PgliteFact]
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

    [PgliteFact]
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

    [PgliteFact]
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

    [PgliteFact]
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

    [PgliteFact]
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

    [PgliteFact]
    public async Task The_schema_is_idempotent_and_has_the_embedders_partial_hnsw_cosine_index()
    {
        // A second instance (another replica of the memory service) runs the schema again.
        var second = new PgVectorStore(_sidecar.Client, Hashed, Dimensions);
        await second.UpsertAsync(Record(_scope, "m", At(0), "x"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "m", At(0), "y"), CancellationToken.None);

        var indexes = await postgres.Binding.QueryDirectAsync("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'agent_memories'");
        var index = Assert.Single(indexes, row => (string)row[0]! == _store.IndexName);
        Assert.Contains("USING hnsw (((embedding)::vector(768)) vector_cosine_ops) WHERE (embedder = 'hashed-ngrams@768'::text)", (string)index[1]!, StringComparison.Ordinal);
        Assert.DoesNotContain(indexes, row => (string)row[0]! == PgVectorStore.FormerIndex);
        Assert.Equal(_store.IndexName, second.IndexName);
        var extension = await postgres.Binding.QueryDirectAsync("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
        Assert.Single(extension);

        // Filtered HNSW scans keep going until k rows pass the tenant/agent filter (new sessions take it).
        var settings = await postgres.Binding.QueryDirectAsync("SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())");
        Assert.Contains(settings, row => ((string)row[0]!).Contains("hnsw.iterative_scan=strict_order", StringComparison.Ordinal));
        Assert.Equal("y", (await second.GetAsync(_scope, "m", CancellationToken.None))!.Text);
    }

    [PgliteFact]
    public async Task Zero_vectors_whose_cosine_is_undefined_never_match()
    {
        await _store.UpsertAsync(Record(_scope, "zero", new float[Dimensions], "zero"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "unit", At(0), "unit"), CancellationToken.None);

        Assert.Equal(["unit"], (await _store.SearchAsync(_scope, At(0), 10, -1, VectorFilter.None, CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Empty(await _store.SearchAsync(_scope, new float[Dimensions], 10, -1, VectorFilter.None, CancellationToken.None));
    }

    [PgliteFact]
    public async Task A_vector_of_the_wrong_length_is_refused_before_anything_is_sent()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _store.UpsertAsync(Record(_scope, "m", new float[3], "x"), CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => _store.ReplaceStaleAsync(new StaleMemory(_scope, "m", "x", ""), new float[MiniLmDimensions], CancellationToken.None));
        Assert.Empty(Calls);
    }

    [PgliteFact]
    public async Task Two_embedders_share_the_table_and_each_searches_only_its_own_vectors()
    {
        var miniLm = MiniLmStore();
        await _store.UpsertAsync(Record(_scope, "hashed", At(0), "by the hashed embedder"), CancellationToken.None);
        await miniLm.UpsertAsync(Record(_scope, "minilm", At(0, dimensions: MiniLmDimensions), "by MiniLM"), CancellationToken.None);

        Assert.Equal(["hashed"], (await _store.SearchAsync(_scope, At(0), 10, -1, VectorFilter.None, CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Equal(["minilm"], (await miniLm.SearchAsync(_scope, At(0, dimensions: MiniLmDimensions), 10, -1, VectorFilter.None, CancellationToken.None)).Select(m => m.Record.Id));
        Assert.NotEqual(_store.IndexName, miniLm.IndexName);

        // Both stay stored and counted, each with its own vector's size; each is stale to the other embedder.
        var usage = new TierUsage(2, (4 * Dimensions) + (4 * MiniLmDimensions) + Encoding.UTF8.GetByteCount("by the hashed embedder") + Encoding.UTF8.GetByteCount("by MiniLM"));
        Assert.Equal(usage, await _store.UsageAsync(_scope, CancellationToken.None));
        Assert.Equal(usage, await miniLm.UsageAsync(_scope, CancellationToken.None));
        Assert.Equal(1, await _store.CountStaleAsync(_scope, CancellationToken.None));
        Assert.Equal(1, await miniLm.CountStaleAsync(_scope, CancellationToken.None));
        Assert.Equal(MiniLmDimensions, (await _store.GetAsync(_scope, "minilm", CancellationToken.None))!.Vector.Length);
    }

    [PgliteFact]
    public async Task Memories_of_another_embedder_are_listed_stale_newest_first_and_replacing_them_makes_them_searchable()
    {
        foreach (var (id, daysLater) in new[] { ("old", 0), ("newest", 2), ("middle", 1) })
        {
            await _store.UpsertAsync(Record(_scope, id, At(0), $"memory {id}", created: Created.AddDays(daysLater)), CancellationToken.None);
        }

        var miniLm = MiniLmStore();
        var stale = await StaleOfTenantAsync(miniLm, _scope.Tenant);
        Assert.Equal(["newest", "middle", "old"], stale.Select(m => m.Id));
        Assert.All(stale, m => Assert.Equal(Hashed, m.Embedder));
        Assert.All(stale, m => Assert.Equal(_scope, m.Scope));
        Assert.Equal("memory newest", stale[0].Text);
        Assert.Empty(await miniLm.SearchAsync(_scope, At(0, dimensions: MiniLmDimensions), 10, -1, VectorFilter.None, CancellationToken.None));

        for (var i = 0; i < stale.Count; i++)
        {
            Assert.True(await miniLm.ReplaceStaleAsync(stale[i], At(10 * i, dimensions: MiniLmDimensions), CancellationToken.None));
        }

        Assert.Equal(["newest", "middle", "old"],
            (await miniLm.SearchAsync(_scope, At(0, dimensions: MiniLmDimensions), 10, -1, VectorFilter.None, CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Empty(await StaleOfTenantAsync(miniLm, _scope.Tenant));
        Assert.Equal(0, await miniLm.CountStaleAsync(_scope, CancellationToken.None));
        // The metadata stays as written; now the hashed embedder is the one that cannot see them.
        var replaced = (await miniLm.GetAsync(_scope, "middle", CancellationToken.None))!;
        Assert.Equal(Created.AddDays(1), replaced.Created);
        Assert.Equal("email_routing", replaced.TaskType);
        Assert.Equal(At(10, dimensions: MiniLmDimensions), replaced.Vector.ToArray());
        Assert.Empty(await _store.SearchAsync(_scope, At(0), 10, -1, VectorFilter.None, CancellationToken.None));
        Assert.Equal(3, await _store.CountStaleAsync(_scope, CancellationToken.None));

        // Listed as the hashed embedder's, the memory is MiniLM's by now: a second replacement does nothing.
        Assert.False(await miniLm.ReplaceStaleAsync(stale[0], At(45, dimensions: MiniLmDimensions), CancellationToken.None));
        Assert.Equal(At(0, dimensions: MiniLmDimensions), (await miniLm.GetAsync(_scope, "newest", CancellationToken.None))!.Vector.ToArray());
    }

    [PgliteFact]
    public async Task A_memory_rewritten_or_deleted_after_it_was_listed_is_not_replaced()
    {
        await _store.UpsertAsync(Record(_scope, "rewritten", At(0), "first text"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "deleted", At(0), "deleted text"), CancellationToken.None);
        var miniLm = MiniLmStore();
        var stale = (await StaleOfTenantAsync(miniLm, _scope.Tenant)).ToDictionary(m => m.Id);

        await _store.UpsertAsync(Record(_scope, "rewritten", At(20), "second text"), CancellationToken.None);
        await _store.DeleteAsync(_scope, "deleted", CancellationToken.None);

        Assert.False(await miniLm.ReplaceStaleAsync(stale["rewritten"], At(0, dimensions: MiniLmDimensions), CancellationToken.None));
        Assert.False(await miniLm.ReplaceStaleAsync(stale["deleted"], At(0, dimensions: MiniLmDimensions), CancellationToken.None));
        var kept = (await _store.GetAsync(_scope, "rewritten", CancellationToken.None))!;
        Assert.Equal("second text", kept.Text);
        Assert.Equal(At(20), kept.Vector.ToArray());
        Assert.Equal(["rewritten"], (await _store.SearchAsync(_scope, At(0), 10, -1, VectorFilter.None, CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Null(await _store.GetAsync(_scope, "deleted", CancellationToken.None));
    }

    [PgliteFact]
    public async Task Count_stale_counts_only_the_scopes_own_memories()
    {
        var colleague = _scope with { Agent = "billing" };
        var otherTenant = _scope with { Tenant = _scope.Tenant + "x" };
        await _store.UpsertAsync(Record(_scope, "a", At(0), "a"), CancellationToken.None);
        await _store.UpsertAsync(Record(_scope, "b", At(0), "b"), CancellationToken.None);
        await _store.UpsertAsync(Record(colleague, "a", At(0), "a"), CancellationToken.None);
        var miniLm = MiniLmStore();
        await miniLm.UpsertAsync(Record(otherTenant, "a", At(0, dimensions: MiniLmDimensions), "a"), CancellationToken.None);

        Assert.Equal(2, await miniLm.CountStaleAsync(_scope, CancellationToken.None));
        Assert.Equal(1, await miniLm.CountStaleAsync(colleague, CancellationToken.None));
        Assert.Equal(0, await miniLm.CountStaleAsync(otherTenant, CancellationToken.None));
        Assert.Equal(0, await _store.CountStaleAsync(_scope, CancellationToken.None));
        Assert.Equal(1, await _store.CountStaleAsync(otherTenant, CancellationToken.None));
        var count = Calls.Last(c => c.Metadata["sql"] == PgVectorStore.CountStaleSql);
        Assert.Equal($"[\"{otherTenant.Tenant}\",\"{otherTenant.Agent}\",\"{Hashed}\"]", count.Metadata["params"]);
    }

    [PgliteFact]
    public async Task A_table_of_the_former_single_embedder_schema_is_migrated_and_its_rows_are_stale()
    {
        // The schema before embedders were recorded, with one memory in it. The other tests' stores create the
        // table again on their first call, so replacing it here takes nothing from them.
        await postgres.Binding.QueryDirectAsync("DROP TABLE IF EXISTS agent_memories");
        await postgres.Binding.QueryDirectAsync("""
            CREATE TABLE agent_memories (
                tenant text NOT NULL, agent text NOT NULL, id text NOT NULL, embedding vector(768) NOT NULL,
                text text NOT NULL, task_type text NOT NULL, success boolean NOT NULL, cost_usd double precision NOT NULL,
                created timestamptz NOT NULL, PRIMARY KEY (tenant, agent, id))
            """);
        await postgres.Binding.QueryDirectAsync("CREATE INDEX agent_memories_embedding_hnsw ON agent_memories USING hnsw (embedding vector_cosine_ops)");
        await postgres.Binding.QueryDirectAsync(
            "INSERT INTO agent_memories VALUES ($1, $2, 'before', $3::vector, 'written before embedders were recorded', 'facts', true, 0.001, $4)",
            _scope.Tenant, _scope.Agent, PgVectorStore.VectorLiteral(At(0)), Created);

        var stale = Assert.Single(await StaleOfTenantAsync(_store, _scope.Tenant));
        Assert.Equal(new StaleMemory(_scope, "before", "written before embedders were recorded", ""), stale);
        Assert.Equal(1, await _store.CountStaleAsync(_scope, CancellationToken.None));
        Assert.Empty(await _store.SearchAsync(_scope, At(0), 10, -1, VectorFilter.None, CancellationToken.None));
        Assert.Equal(1, (await _store.UsageAsync(_scope, CancellationToken.None)).Items);
        Assert.Equal("facts", (await _store.GetAsync(_scope, "before", CancellationToken.None))!.TaskType);

        var column = await postgres.Binding.QueryDirectAsync(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'agent_memories'::regclass AND attname = 'embedding'");
        Assert.Equal("vector", column[0][0]);
        var indexes = await postgres.Binding.QueryDirectAsync("SELECT indexname FROM pg_indexes WHERE tablename = 'agent_memories'");
        Assert.DoesNotContain(indexes, row => (string)row[0]! == PgVectorStore.FormerIndex);
        Assert.Contains(indexes, row => (string)row[0]! == _store.IndexName);

        // Re-embedded, the memory is searched again; a replica starting on the migrated table changes nothing.
        Assert.True(await _store.ReplaceStaleAsync(stale, At(0), CancellationToken.None));
        var replica = new PgVectorStore(_sidecar.Client, Hashed, Dimensions);
        Assert.Equal(["before"], (await replica.SearchAsync(_scope, At(0), 10, -1, VectorFilter.None, CancellationToken.None)).Select(m => m.Record.Id));
        Assert.Equal(0, await replica.CountStaleAsync(_scope, CancellationToken.None));
    }

    [PgliteFact]
    public async Task Search_can_use_the_embedders_partial_hnsw_index()
    {
        await _store.UpsertAsync(Record(_scope, "m", At(0), "x"), CancellationToken.None);

        // The table is small, so PostgreSQL would rather scan and sort: forbidding the sort leaves the index
        // as the only ordered path, which the plan takes only if the query's predicate and ORDER BY match it.
        await postgres.Binding.QueryDirectAsync("SET enable_sort = off");
        List<object?[]> plan;
        try
        {
            plan = await postgres.Binding.QueryDirectAsync("EXPLAIN " + _store.SearchSql,
                _scope.Tenant, _scope.Agent, PgVectorStore.VectorLiteral(At(0)), DBNull.Value, false, 0.0, 10);
        }
        finally
        {
            await postgres.Binding.QueryDirectAsync("RESET enable_sort");
        }

        Assert.Contains(plan, row => ((string)row[0]!).Contains($"Index Scan using {_store.IndexName}", StringComparison.Ordinal));
    }

    [PgliteTheory]
    [InlineData("text-embedding-3-small'; DROP TABLE agent_memories; --@768")]
    [InlineData("model with spaces@768")]
    [InlineData("model@768\n")]
    public void An_embedder_id_that_could_change_the_sql_is_refused_naming_the_setting(string embedder)
    {
        var refused = Assert.Throws<ArgumentException>(() => new PgVectorStore(_sidecar.Client, embedder, Dimensions));
        Assert.Contains("Memory:Embeddings", refused.Message, StringComparison.Ordinal);
    }

    [PgliteFact]
    public void More_dimensions_than_pgvectors_hnsw_index_takes_are_refused_at_construction()
    {
        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => new PgVectorStore(_sidecar.Client, "text-embedding-3-large@3072", 3072));
        Assert.Contains("at most 2000", refused.Message, StringComparison.Ordinal);
    }
}
