using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapr.Client;
using PersistentAgents.Contracts;

namespace PersistentAgents.Memory.Dapr;

/// <summary>
/// Semantic memory in PostgreSQL with pgvector behind the <c>bindings.postgresql</c> output binding
/// <see cref="DaprComponents.SemanticMemory"/>. Dapr has no vector building block, so this class owns the
/// SQL: the schema (created and migrated idempotently on first use), an HNSW cosine index, upserts and
/// top-k queries.
/// <para>
/// Requests are the binding's <c>exec</c> / <c>query</c> operations with request metadata <c>sql</c> and
/// <c>params</c> (a JSON array, placeholders <c>$1, $2 ...</c>); <c>query</c> answers a JSON array of row
/// arrays and <c>exec</c> the <c>rows-affected</c> response metadata. Vectors travel as pgvector's text form
/// <c>[0.1,0.2,...]</c> cast with <c>::vector</c>; every placeholder carries a cast so the statement means the
/// same whatever type the binding's driver guesses for a JSON value. Every statement filters on tenant and
/// agent, so no search, count or delete reaches another agent's memories; only the re-embedding job's
/// <see cref="ListStaleAsync"/> looks across agents, as its port says.
/// </para>
/// <para>
/// One table holds the vectors of every embedder a deployment has used, so that a change of model keeps the
/// memories until they are embedded again: the column is a <c>vector</c> without dimensions, each row names
/// its <c>embedder</c>, and each embedder gets its own partial HNSW index over <c>embedding::vector(N)</c>
/// (pgvector's way of indexing vectors of several dimensions in one column). A store writes and searches only
/// its own embedder's rows, with the same cast expression and predicate as its index so the planner can use it.
/// </para>
/// </summary>
public sealed partial class PgVectorStore : IVectorStore
{
    public const string Table = "agent_memories";
    public const string ExecOperation = "exec";
    public const string QueryOperation = "query";
    public const string SqlMetadataKey = "sql";
    public const string ParamsMetadataKey = "params";
    public const string RowsAffectedMetadataKey = "rows-affected";

    /// <summary>pgvector's HNSW index takes <c>vector</c>s of at most this many dimensions.</summary>
    public const int MaxIndexedDimensions = 2000;

    /// <summary>The index of the schema before embedders were recorded: one HNSW index over every row, all of 768 dimensions.</summary>
    public const string FormerIndex = $"{Table}_embedding_hnsw";

    public const string Columns =
        "id, embedding::text, text, task_type, success, cost_usd, floor(extract(epoch FROM created) * 1000000)::bigint";

    /// <summary><c>$10</c> is the store's embedder: a rewritten memory takes the embedder that wrote it last.</summary>
    public const string UpsertSql = $"""
        INSERT INTO {Table} (tenant, agent, id, embedding, text, task_type, success, cost_usd, created, embedder)
        VALUES ($1::text, $2::text, $3::text, $4::vector, $5::text, $6::text, $7::boolean, $8::double precision, $9::timestamptz, $10::text)
        ON CONFLICT (tenant, agent, id) DO UPDATE SET
            embedding = EXCLUDED.embedding, text = EXCLUDED.text, task_type = EXCLUDED.task_type,
            success = EXCLUDED.success, cost_usd = EXCLUDED.cost_usd, created = EXCLUDED.created,
            embedder = EXCLUDED.embedder
        """;

    public const string GetSql = $"SELECT {Columns} FROM {Table} WHERE tenant = $1::text AND agent = $2::text AND id = $3::text";

    public const string DeleteSql = $"DELETE FROM {Table} WHERE tenant = $1::text AND agent = $2::text AND id = $3::text";

    /// <summary>
    /// Every memory of the agent, whichever embedder made it (they are all kept); bytes as the embedded index
    /// counts them: 4 per dimension plus the text's UTF-8 bytes.
    /// </summary>
    public const string UsageSql = $"""
        SELECT count(*)::bigint, COALESCE(sum(octet_length(text) + 4 * vector_dims(embedding)), 0)::bigint
        FROM {Table} WHERE tenant = $1::text AND agent = $2::text
        """;

    public const string PurgeSql = $"DELETE FROM {Table} WHERE tenant = $1::text AND agent = $2::text";

    /// <summary><c>$1</c> the store's embedder, <c>$2</c> how many: the newest first, so recent memories come back to recall first.</summary>
    public const string ListStaleSql = $"""
        SELECT tenant, agent, id, text, embedder FROM {Table}
        WHERE embedder <> $1::text
        ORDER BY created DESC
        LIMIT $2::integer
        """;

    /// <summary>
    /// <c>$4</c> the new vector, <c>$5</c> the store's embedder; <c>$6</c> and <c>$7</c> the embedder and text
    /// the memory was listed with, so a memory rewritten since keeps what its writer left.
    /// </summary>
    public const string ReplaceStaleSql = $"""
        UPDATE {Table} SET embedding = $4::vector, embedder = $5::text
        WHERE tenant = $1::text AND agent = $2::text AND id = $3::text AND embedder = $6::text AND text = $7::text
        """;

    /// <summary><c>$3</c> the store's embedder.</summary>
    public const string CountStaleSql = $"SELECT count(*)::bigint FROM {Table} WHERE tenant = $1::text AND agent = $2::text AND embedder <> $3::text";

    private readonly DaprClient _dapr;
    private readonly string _bindingName;
    private readonly Lock _schemaGate = new();
    private Task? _schema;

    /// <param name="embedder">The embedder whose vectors this store writes and searches (<c>Embedders.IdOf</c>).</param>
    /// <param name="dimensions">How many dimensions that embedder's vectors have.</param>
    public PgVectorStore(DaprClient dapr, string embedder, int dimensions, string bindingName = DaprComponents.SemanticMemory)
    {
        ArgumentNullException.ThrowIfNull(dapr);
        ArgumentException.ThrowIfNullOrEmpty(embedder);
        // The id is written into the schema and search SQL as a literal (see SearchSql): nothing but these
        // characters, so it can neither end the literal nor change the statement.
        if (!EmbedderIdPattern().IsMatch(embedder))
        {
            throw new ArgumentException(
                $"embedder '{embedder}' (the model of Memory:Embeddings and its dimensions) may contain only letters, digits and . _ : / @ -: the pgvector store writes it into its SQL",
                nameof(embedder));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        if (dimensions > MaxIndexedDimensions)
        {
            throw new ArgumentOutOfRangeException(nameof(dimensions), dimensions,
                $"embedder '{embedder}' has {dimensions} dimensions; pgvector's HNSW index takes at most {MaxIndexedDimensions}: ask the embeddings endpoint for fewer");
        }

        _dapr = dapr;
        Embedder = embedder;
        Dimensions = dimensions;
        _bindingName = bindingName;
        var vectorType = $"vector({dimensions.ToString(CultureInfo.InvariantCulture)})";
        var embedderLiteral = $"'{embedder}'";
        IndexName = $"{Table}_hnsw_{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(embedder)), 0, 8)}";
        IndexSql = $"CREATE INDEX IF NOT EXISTS {IndexName} ON {Table} USING hnsw ((embedding::{vectorType}) vector_cosine_ops) WHERE embedder = {embedderLiteral}";
        SearchSql = $"""
            SELECT {Columns}, 1 - (embedding::{vectorType} <=> $3::{vectorType}) AS similarity
            FROM {Table}
            WHERE tenant = $1::text AND agent = $2::text AND embedder = {embedderLiteral}
              AND ($4::text IS NULL OR task_type = $4::text)
              AND ($5::boolean = false OR success)
              AND (embedding::{vectorType} <=> $3::{vectorType}) <= 1 - $6::double precision
            ORDER BY embedding::{vectorType} <=> $3::{vectorType}
            LIMIT $7::integer
            """;
    }

    public string Embedder { get; }

    public int Dimensions { get; }

    /// <summary>This embedder's HNSW index: the table's name and a hash of the embedder, whose id may be longer than a name can be and hold characters a name cannot.</summary>
    public string IndexName { get; }

    /// <summary>
    /// A partial HNSW index over this embedder's rows only, on the vectors cast to its dimensions (an index
    /// needs one dimension count; the other embedders' rows are outside it). The cast also makes PostgreSQL
    /// refuse a vector of other dimensions written under this embedder.
    /// </summary>
    public string IndexSql { get; }

    /// <summary>
    /// Top-k by cosine distance among this embedder's vectors. <c>$4</c> is the task type (null for any),
    /// <c>$5</c> whether only successful memories count, <c>$6</c> the similarity floor, <c>$7</c> k. The
    /// embedder is a literal and the distance is on the index's expression, <c>embedding::vector(N)</c>: the
    /// planner uses a partial index only when it can prove the query's WHERE implies the index's, which it
    /// cannot for a parameter in a generic plan (the binding's driver may prepare and reuse statements), and
    /// only for an ORDER BY on the indexed expression. The floor is written as a distance bound because a zero
    /// vector's cosine distance is NaN, which PostgreSQL sorts above every number: "distance &lt;= bound"
    /// leaves it out, where "similarity &gt;= floor" would let it through (and the binding cannot write NaN as JSON).
    /// </summary>
    public string SearchSql { get; }

    /// <summary>
    /// The schema, one statement per <c>exec</c> (the binding runs a statement with parameters through the
    /// extended protocol, which takes one statement at a time). Each is idempotent, and together they also
    /// migrate a table of the schema before embedders were recorded (<c>embedding vector(768)</c>, no
    /// <c>embedder</c>, <see cref="FormerIndex"/> over every row): its rows get embedder '' and so are stale
    /// to every store until the re-embedding job gives them a vector again.
    /// </summary>
    public IReadOnlyList<string> SchemaSql =>
    [
        "CREATE EXTENSION IF NOT EXISTS vector",
        $"""
        CREATE TABLE IF NOT EXISTS {Table} (
            tenant text NOT NULL,
            agent text NOT NULL,
            id text NOT NULL,
            embedding vector NOT NULL,
            text text NOT NULL,
            task_type text NOT NULL,
            success boolean NOT NULL,
            cost_usd double precision NOT NULL,
            created timestamptz NOT NULL,
            embedder text NOT NULL DEFAULT '',
            PRIMARY KEY (tenant, agent, id))
        """,
        $"ALTER TABLE {Table} ADD COLUMN IF NOT EXISTS embedder text NOT NULL DEFAULT ''",
        $"DROP INDEX IF EXISTS {FormerIndex}",
        WidenEmbeddingSql,
        IndexSql,
        IterativeScanSql,
    ];

    /// <summary>
    /// Drops the dimensions from a former table's <c>embedding vector(768)</c>, so vectors of other embedders
    /// fit beside its rows. Only while the column still has them: ALTER COLUMN TYPE takes the table's exclusive
    /// lock and rebuilds its indexes, which no replica's start should do once the table is migrated.
    /// </summary>
    public const string WidenEmbeddingSql = $"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{Table}'::regclass AND attname = 'embedding' AND atttypmod <> -1) THEN
                ALTER TABLE {Table} ALTER COLUMN embedding TYPE vector;
            END IF;
        END $$
        """;

    /// <summary>
    /// An HNSW scan hands back its <c>hnsw.ef_search</c> nearest rows of the whole index and the WHERE clause
    /// filters them afterwards, so in a table shared by many agents one agent's top-k could come back short or
    /// empty. pgvector 0.8+ keeps scanning until enough rows pass the filter when <c>hnsw.iterative_scan</c> is
    /// on; the binding pools its connections, so the setting is made the database's default (new sessions
    /// take it). Without the privilege to alter the database this is skipped: an operator can set it instead.
    /// </summary>
    public const string IterativeScanSql = """
        DO $$ BEGIN
            EXECUTE format('ALTER DATABASE %I SET hnsw.iterative_scan = %L', current_database(), 'strict_order');
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'hnsw.iterative_scan not set: no privilege to alter the database';
        END $$
        """;

    public async Task UpsertAsync(VectorRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        EnsureDimensions(record.Vector, nameof(record));
        await ExecAsync(UpsertSql,
        [
            record.Scope.Tenant, record.Scope.Agent, record.Id, VectorLiteral(record.Vector.Span), record.Text, record.TaskType,
            record.Success, record.CostUsd, record.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            Embedder,
        ], cancellationToken);
    }

    public async Task<IReadOnlyList<VectorMatch>> SearchAsync(AgentScope scope, ReadOnlyMemory<float> query, int topK, double minSimilarity, VectorFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);

        // The embedded index skips vectors of another length; PostgreSQL would reject the query instead.
        if (topK <= 0 || query.Length != Dimensions)
        {
            return [];
        }

        var rows = await QueryAsync(SearchSql,
            [scope.Tenant, scope.Agent, VectorLiteral(query.Span), filter.TaskType, filter.SuccessfulOnly, minSimilarity, topK],
            cancellationToken);
        return rows.Select(row => new VectorMatch(ReadRecord(scope, row), row[7].GetDouble())).ToList();
    }

    public async Task<VectorRecord?> GetAsync(AgentScope scope, string id, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync(GetSql, [scope.Tenant, scope.Agent, id], cancellationToken);
        return rows.Count == 0 ? null : ReadRecord(scope, rows[0]);
    }

    public async Task<bool> DeleteAsync(AgentScope scope, string id, CancellationToken cancellationToken) =>
        await ExecAsync(DeleteSql, [scope.Tenant, scope.Agent, id], cancellationToken) > 0;

    public async Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync(UsageSql, [scope.Tenant, scope.Agent], cancellationToken);
        return rows.Count == 0 ? new TierUsage(0, 0) : new TierUsage(rows[0][0].GetInt64(), rows[0][1].GetInt64());
    }

    public Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken) =>
        ExecAsync(PurgeSql, [scope.Tenant, scope.Agent], cancellationToken);

    public async Task<IReadOnlyList<StaleMemory>> ListStaleAsync(int limit, CancellationToken cancellationToken)
    {
        if (limit <= 0)
        {
            return [];
        }

        var rows = await QueryAsync(ListStaleSql, [Embedder, limit], cancellationToken);
        return rows.Select(row => new StaleMemory(new AgentScope(row[0].GetString()!, row[1].GetString()!), row[2].GetString()!, row[3].GetString()!, row[4].GetString()!)).ToList();
    }

    public async Task<bool> ReplaceStaleAsync(StaleMemory memory, ReadOnlyMemory<float> vector, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(memory);
        EnsureDimensions(vector, nameof(vector));
        return await ExecAsync(ReplaceStaleSql,
            [memory.Scope.Tenant, memory.Scope.Agent, memory.Id, VectorLiteral(vector.Span), Embedder, memory.Embedder, memory.Text],
            cancellationToken) == 1;
    }

    public async Task<long> CountStaleAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync(CountStaleSql, [scope.Tenant, scope.Agent, Embedder], cancellationToken);
        return rows.Count == 0 ? 0 : rows[0][0].GetInt64();
    }

    /// <summary>pgvector's text form. Shortest round-trip formatting, so the stored floats are the given ones.</summary>
    public static string VectorLiteral(ReadOnlySpan<float> vector)
    {
        var text = new StringBuilder(vector.Length * 12).Append('[');
        for (var i = 0; i < vector.Length; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            var value = vector[i];
            if (!float.IsFinite(value))
            {
                throw new ArgumentException("vector components must be finite", nameof(vector));
            }

            text.Append(value.ToString("R", CultureInfo.InvariantCulture));
        }

        return text.Append(']').ToString();
    }

    public static float[] ParseVectorLiteral(string literal)
    {
        ArgumentNullException.ThrowIfNull(literal);
        var body = literal.AsSpan().Trim().TrimStart('[').TrimEnd(']');
        if (body.IsEmpty)
        {
            return [];
        }

        var values = new List<float>();
        foreach (var range in body.Split(','))
        {
            values.Add(float.Parse(body[range], NumberStyles.Float, CultureInfo.InvariantCulture));
        }

        return [.. values];
    }

    /// <summary>The binding's params: a JSON array of strings, numbers, booleans and nulls, sent as a string.</summary>
    public static string ParamsJson(IReadOnlyList<object?> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var parameter in parameters)
            {
                switch (parameter)
                {
                    case null: writer.WriteNullValue(); break;
                    case string s: writer.WriteStringValue(s); break;
                    case bool b: writer.WriteBooleanValue(b); break;
                    case int i: writer.WriteNumberValue(i); break;
                    case long l: writer.WriteNumberValue(l); break;
                    case double d: writer.WriteNumberValue(d); break;
                    default: throw new ArgumentException($"unsupported parameter type {parameter.GetType()}", nameof(parameters));
                }
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Refused before anything is sent: the table would take it, but this embedder's index would not.</summary>
    private void EnsureDimensions(ReadOnlyMemory<float> vector, string parameter)
    {
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"vector has {vector.Length} dimensions, the embedder {Embedder} {Dimensions}", parameter);
        }
    }

    [GeneratedRegex(@"^[A-Za-z0-9._:/@-]+\z")]
    private static partial Regex EmbedderIdPattern();

    private static VectorRecord ReadRecord(AgentScope scope, JsonElement[] row)
    {
        var micros = row[6].GetInt64();
        return new VectorRecord(
            row[0].GetString()!,
            scope,
            ParseVectorLiteral(row[1].GetString()!),
            row[2].GetString()!,
            row[3].GetString()!,
            row[4].GetBoolean(),
            row[5].GetDouble(),
            DateTimeOffset.UnixEpoch.AddTicks(micros * (TimeSpan.TicksPerMillisecond / 1000)));
    }

    private async Task<long> ExecAsync(string sql, IReadOnlyList<object?> parameters, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        var response = await InvokeAsync(ExecOperation, sql, parameters, cancellationToken);
        return response.Metadata.TryGetValue(RowsAffectedMetadataKey, out var affected)
            && long.TryParse(affected, NumberStyles.Integer, CultureInfo.InvariantCulture, out var count) ? count : 0;
    }

    private async Task<List<JsonElement[]>> QueryAsync(string sql, IReadOnlyList<object?> parameters, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        var response = await InvokeAsync(QueryOperation, sql, parameters, cancellationToken);
        if (response.Data.IsEmpty)
        {
            return [];
        }

        using var document = JsonDocument.Parse(response.Data);
        return document.RootElement.EnumerateArray()
            .Select(row => row.EnumerateArray().Select(cell => cell.Clone()).ToArray())
            .ToList();
    }

    private Task<BindingResponse> InvokeAsync(string operation, string sql, IReadOnlyList<object?> parameters, CancellationToken cancellationToken)
    {
        var request = new BindingRequest(_bindingName, operation);
        request.Metadata[SqlMetadataKey] = sql;
        if (parameters.Count > 0)
        {
            request.Metadata[ParamsMetadataKey] = ParamsJson(parameters);
        }

        return _dapr.InvokeBindingAsync(request, cancellationToken);
    }

    /// <summary>
    /// Creates the schema once per instance, one statement per <c>exec</c>, each IF NOT EXISTS. Callers share
    /// one attempt; a failed one (say another instance created the table at the same moment) is retried by
    /// the next call.
    /// </summary>
    private Task EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        Task schema;
        lock (_schemaGate)
        {
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = CreateSchemaAsync();
            }

            schema = _schema;
        }

        return schema.IsCompletedSuccessfully ? Task.CompletedTask : schema.WaitAsync(cancellationToken);
    }

    private async Task CreateSchemaAsync()
    {
        foreach (var statement in SchemaSql)
        {
            // Not the caller's token: the attempt is shared, one caller giving up must not fail the others.
            await InvokeAsync(ExecOperation, statement, [], CancellationToken.None);
        }
    }
}
