using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Memory.Embedded;

/// <summary>
/// Semantic memory in process, one partition per agent. A small partition is searched exactly with SIMD
/// dot products over unit vectors; once it reaches <see cref="GraphThreshold"/> records it gets an HNSW
/// graph. Every write goes through to SQLite first. Graphs are saved as snapshots (on stop, on unload and by
/// <see cref="VectorIndexMaintenance"/>), each with the write version it covers, so loading a partition reads
/// the graph and replays only what changed after it instead of rebuilding from scratch.
/// </summary>
/// <remarks>
/// RAM is bounded: a partition is loaded on its agent's first use, at most <see cref="MemoryOptions.ResidentAgents"/>
/// stay loaded (the least recently used is unloaded past that), one idle for <see cref="MemoryOptions.IdleUnloadAfter"/>
/// is unloaded by the maintenance timer, and an agent keeps at most <see cref="MemoryOptions.MaxSemanticMemoriesPerAgent"/>
/// memories. SQLite holds every record, so unloading loses nothing.
/// </remarks>
public sealed class InProcessVectorIndex : IVectorStore, IDisposable
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS semantic_memories (
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            id TEXT NOT NULL,
            vector BLOB NOT NULL,
            text TEXT NOT NULL,
            task_type TEXT NOT NULL,
            success INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            created_ms INTEGER NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            embedder TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (tenant, agent, id));
        """;

    // Created after the version column exists (older databases get it added on open), so MAX(version) on
    // every upsert is an index lookup rather than a scan of the vectors.
    private const string VersionIndex = "CREATE INDEX IF NOT EXISTS ix_semantic_memories_version ON semantic_memories (version)";

    // Finding memories another embedder made is a lookup, not a scan, once every one has been re-embedded.
    private const string EmbedderIndex = "CREATE INDEX IF NOT EXISTS ix_semantic_memories_embedder ON semantic_memories (embedder)";

    public const int DefaultGraphThreshold = 1_000;
    // "SNS2": snapshots name the embedder their graph was built for (the first format, "SNSP", did not).
    private const uint SnapshotMagic = 0x32534E53;

    private readonly SqliteDatabase _database;
    private readonly string _snapshotRoot;
    private readonly MemoryOptions _limits;
    private readonly TimeProvider _timeProvider;
    private readonly ConcurrentDictionary<AgentScope, Lazy<Partition>> _partitions = new();
    private readonly Lock _evictionLock = new();
    private int _snapshotsLoaded;
    private int _replayed;

    /// <param name="embedder">The embedder whose vectors this index writes and searches (<c>Embedders.IdOf</c>).</param>
    /// <param name="limits">The <c>Memory</c> options that bound what stays in RAM; their defaults when null.</param>
    public InProcessVectorIndex(SqliteDatabase database, string dataDirectory, string embedder, int graphThreshold = DefaultGraphThreshold, MemoryOptions? limits = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(embedder);
        _database = database;
        Embedder = embedder;
        _snapshotRoot = Path.Combine(dataDirectory, "vector-index");
        GraphThreshold = graphThreshold;
        _limits = limits ?? new MemoryOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_limits.ResidentAgents, 1, "Memory:ResidentAgents");
        ArgumentOutOfRangeException.ThrowIfLessThan(_limits.MaxSemanticMemoriesPerAgent, 1, "Memory:MaxSemanticMemoriesPerAgent");
        _timeProvider = timeProvider ?? TimeProvider.System;
        using var connection = _database.Open();
        AddColumnToOlderDatabases(connection, "version", "INTEGER NOT NULL DEFAULT 0");
        AddColumnToOlderDatabases(connection, "embedder", "TEXT NOT NULL DEFAULT ''");
        SqliteDatabase.Execute(connection, VersionIndex);
        SqliteDatabase.Execute(connection, EmbedderIndex);
    }

    public string Embedder { get; }

    public int GraphThreshold { get; }

    /// <summary>Partitions loaded from a snapshot since start, and records replayed into them after it.</summary>
    public (int Snapshots, int Replayed) Restored => (Volatile.Read(ref _snapshotsLoaded), Volatile.Read(ref _replayed));

    /// <summary>Agents whose partition is in RAM now.</summary>
    public int ResidentPartitions => _partitions.Count;

    public Task UpsertAsync(VectorRecord record, CancellationToken cancellationToken)
    {
        WithLoaded(record.Scope, partition =>
        {
            using var connection = _database.Open();
            using (var upsert = connection.CreateCommand())
            {
                upsert.CommandText = """
                    INSERT INTO semantic_memories (tenant, agent, id, vector, text, task_type, success, cost_usd, created_ms, version, embedder)
                    VALUES ($tenant, $agent, $id, $vector, $text, $task, $success, $cost, $created,
                            (SELECT COALESCE(MAX(version), 0) + 1 FROM semantic_memories), $embedder)
                    ON CONFLICT (tenant, agent, id) DO UPDATE SET
                        vector = excluded.vector, text = excluded.text, task_type = excluded.task_type,
                        success = excluded.success, cost_usd = excluded.cost_usd, created_ms = excluded.created_ms,
                        version = excluded.version, embedder = excluded.embedder
                    RETURNING version
                    """;
                upsert.Parameters.AddWithValue("$tenant", record.Scope.Tenant);
                upsert.Parameters.AddWithValue("$agent", record.Scope.Agent);
                upsert.Parameters.AddWithValue("$id", record.Id);
                upsert.Parameters.AddWithValue("$vector", MemoryMarshal.AsBytes(record.Vector.Span).ToArray());
                upsert.Parameters.AddWithValue("$text", record.Text);
                upsert.Parameters.AddWithValue("$task", record.TaskType);
                upsert.Parameters.AddWithValue("$success", record.Success ? 1 : 0);
                upsert.Parameters.AddWithValue("$cost", record.CostUsd);
                upsert.Parameters.AddWithValue("$created", record.Created.ToUnixTimeMilliseconds());
                upsert.Parameters.AddWithValue("$embedder", Embedder);
                partition.Upsert(record, (long)upsert.ExecuteScalar()!);
            }

            foreach (var oldest in partition.OldestBeyond(_limits.MaxSemanticMemoriesPerAgent))
            {
                DeleteRow(connection, record.Scope, oldest);
                partition.Remove(oldest);
            }

            DropIfMostlyDeleted(record.Scope, partition);
            return true;
        });
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<VectorMatch>> SearchAsync(AgentScope scope, ReadOnlyMemory<float> query, int topK, double minSimilarity, VectorFilter filter, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<VectorMatch>>(Loaded(scope).Search(query.Span, topK, minSimilarity, filter));

    public Task<VectorRecord?> GetAsync(AgentScope scope, string id, CancellationToken cancellationToken) =>
        Task.FromResult(Loaded(scope).Get(id));

    public Task<bool> DeleteAsync(AgentScope scope, string id, CancellationToken cancellationToken) =>
        Task.FromResult(WithLoaded(scope, partition =>
        {
            using (var connection = _database.Open())
            {
                DeleteRow(connection, scope, id);
            }

            var removed = partition.Remove(id);
            DropIfMostlyDeleted(scope, partition);
            return removed;
        }));

    public Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken) =>
        Task.FromResult(Loaded(scope).Usage());

    public Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken) =>
        Task.FromResult(WithLoaded(scope, partition =>
        {
            using (var connection = _database.Open())
            using (var delete = connection.CreateCommand())
            {
                delete.CommandText = "DELETE FROM semantic_memories WHERE tenant = $tenant AND agent = $agent";
                delete.Parameters.AddWithValue("$tenant", scope.Tenant);
                delete.Parameters.AddWithValue("$agent", scope.Agent);
                delete.ExecuteNonQuery();
            }

            Drop(scope, partition);
            return (long)partition.Usage().Items;
        }));

    public Task<IReadOnlyList<StaleMemory>> ListStaleAsync(int limit, CancellationToken cancellationToken)
    {
        using var connection = _database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = """
            SELECT tenant, agent, id, text, embedder FROM semantic_memories
            WHERE embedder <> $embedder ORDER BY created_ms DESC LIMIT $limit
            """;
        query.Parameters.AddWithValue("$embedder", Embedder);
        query.Parameters.AddWithValue("$limit", limit);
        using var reader = query.ExecuteReader();
        var stale = new List<StaleMemory>();
        while (reader.Read())
        {
            stale.Add(new StaleMemory(new AgentScope(reader.GetString(0), reader.GetString(1)), reader.GetString(2), reader.GetString(3), reader.GetString(4)));
        }

        return Task.FromResult<IReadOnlyList<StaleMemory>>(stale);
    }

    public Task<bool> ReplaceStaleAsync(StaleMemory memory, ReadOnlyMemory<float> vector, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(memory);
        return Task.FromResult(WithLoaded(memory.Scope, partition =>
        {
            using var connection = _database.Open();
            using var update = connection.CreateCommand();
            // Only the row as it was listed: one rewritten or deleted since keeps what its writer left.
            update.CommandText = """
                UPDATE semantic_memories
                SET vector = $vector, embedder = $embedder, version = (SELECT COALESCE(MAX(version), 0) + 1 FROM semantic_memories)
                WHERE tenant = $tenant AND agent = $agent AND id = $id AND embedder = $stale AND text = $text
                RETURNING task_type, success, cost_usd, created_ms, version
                """;
            update.Parameters.AddWithValue("$vector", MemoryMarshal.AsBytes(vector.Span).ToArray());
            update.Parameters.AddWithValue("$embedder", Embedder);
            update.Parameters.AddWithValue("$tenant", memory.Scope.Tenant);
            update.Parameters.AddWithValue("$agent", memory.Scope.Agent);
            update.Parameters.AddWithValue("$id", memory.Id);
            update.Parameters.AddWithValue("$stale", memory.Embedder);
            update.Parameters.AddWithValue("$text", memory.Text);
            using var reader = update.ExecuteReader();
            if (!reader.Read())
            {
                return false;
            }

            var record = new VectorRecord(memory.Id, memory.Scope, vector, memory.Text, reader.GetString(0), reader.GetInt64(1) != 0,
                reader.GetDouble(2), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)));
            partition.Upsert(record, reader.GetInt64(4));
            return true;
        }));
    }

    public Task<long> CountStaleAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        using var connection = _database.Open();
        using var count = connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM semantic_memories WHERE tenant = $tenant AND agent = $agent AND embedder <> $embedder";
        count.Parameters.AddWithValue("$tenant", scope.Tenant);
        count.Parameters.AddWithValue("$agent", scope.Agent);
        count.Parameters.AddWithValue("$embedder", Embedder);
        return Task.FromResult((long)count.ExecuteScalar()!);
    }

    /// <summary>Saves the graph of every loaded partition changed since its last snapshot.</summary>
    /// <returns>How many snapshots were written.</returns>
    public int SaveSnapshots()
    {
        var saved = 0;
        foreach (var (scope, partition) in _partitions)
        {
            saved += partition.IsValueCreated && partition.Value.SaveSnapshotIfChanged(SnapshotPath(scope), Embedder) ? 1 : 0;
        }

        return saved;
    }

    /// <summary>Unloads every partition unused for <see cref="MemoryOptions.IdleUnloadAfter"/>.</summary>
    /// <returns>How many were unloaded.</returns>
    public int UnloadIdle()
    {
        var idleSince = _timeProvider.GetTimestamp() - (long)(_limits.IdleUnloadAfter.TotalSeconds * _timeProvider.TimestampFrequency);
        var unloaded = 0;
        foreach (var (scope, partition) in _partitions)
        {
            if (partition.IsValueCreated && partition.Value.LastUsed < idleSince)
            {
                unloaded += Unload(scope, partition) ? 1 : 0;
            }
        }

        return unloaded;
    }

    public void Dispose() => SaveSnapshots();

    /// <summary>The scope's partition, loaded if it is not in RAM; marks it used and keeps the resident count within bounds.</summary>
    private Partition Loaded(AgentScope scope)
    {
        var lazy = _partitions.GetOrAdd(scope, s => new Lazy<Partition>(() => Load(s)));
        // Only a load can take the count past the bound; ConcurrentDictionary.Count takes every bucket's lock,
        // which is not for every search and write.
        var loading = !lazy.IsValueCreated;
        Partition partition;
        try
        {
            partition = lazy.Value;
        }
        catch
        {
            // A failed load (SQLite busy, disk error) must not stay cached: the next call tries again.
            _partitions.TryRemove(KeyValuePair.Create(scope, lazy));
            throw;
        }

        partition.LastUsed = _timeProvider.GetTimestamp();
        if (loading && _partitions.Count > _limits.ResidentAgents)
        {
            UnloadLeastRecentlyUsed(scope);
        }

        return partition;
    }

    /// <summary>
    /// Runs a write with the partition's lock held, so that the SQLite write and the in-memory one happen in
    /// the same order for every writer (snapshot versions depend on it) and an unload cannot come between them.
    /// </summary>
    private T WithLoaded<T>(AgentScope scope, Func<Partition, T> write)
    {
        while (true)
        {
            var partition = Loaded(scope);
            lock (partition.WriteLock)
            {
                // Unloaded between the lookup and the lock: the write goes to the partition loaded next.
                if (!partition.Unloaded)
                {
                    return write(partition);
                }
            }
        }
    }

    private void UnloadLeastRecentlyUsed(AgentScope keep)
    {
        lock (_evictionLock)
        {
            while (_partitions.Count > _limits.ResidentAgents)
            {
                var victim = _partitions
                    .Where(p => p.Key != keep && p.Value.IsValueCreated)
                    .MinBy(p => p.Value.Value.LastUsed);
                if (victim.Value is null || !Unload(victim.Key, victim.Value))
                {
                    return;
                }
            }
        }
    }

    /// <returns>False when the partition was no longer the scope's loaded one.</returns>
    private bool Unload(AgentScope scope, Lazy<Partition> lazy)
    {
        var partition = lazy.Value;
        lock (partition.WriteLock)
        {
            if (partition.Unloaded)
            {
                return false;
            }

            // Snapshot first, so that loading it again reads the graph instead of rebuilding it.
            partition.SaveSnapshotIfChanged(SnapshotPath(scope), Embedder);
            partition.Unloaded = true;
            return _partitions.TryRemove(KeyValuePair.Create(scope, lazy));
        }
    }

    /// <summary>
    /// A graph only marks removed records deleted, so an agent whose memories keep being refreshed or trimmed
    /// would grow its graph without end; once deleted nodes outnumber live ones (and the threshold) the
    /// partition is dropped, and its next use rebuilds a compact graph from SQLite. Call with the write lock held.
    /// </summary>
    private void DropIfMostlyDeleted(AgentScope scope, Partition partition)
    {
        if (partition.DeletedNodes > Math.Max(partition.Count, GraphThreshold))
        {
            Drop(scope, partition);
        }
    }

    /// <summary>Takes the partition out of RAM and deletes its snapshot. Call with its write lock held.</summary>
    private void Drop(AgentScope scope, Partition partition)
    {
        var snapshot = SnapshotPath(scope);
        if (File.Exists(snapshot))
        {
            File.Delete(snapshot);
        }

        partition.Unloaded = true;
        // Not unloaded until now, so the entry for the scope is this partition's.
        _partitions.TryRemove(scope, out _);
    }

    private static void DeleteRow(SqliteConnection connection, AgentScope scope, string id)
    {
        using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM semantic_memories WHERE tenant = $tenant AND agent = $agent AND id = $id";
        delete.Parameters.AddWithValue("$tenant", scope.Tenant);
        delete.Parameters.AddWithValue("$agent", scope.Agent);
        delete.Parameters.AddWithValue("$id", id);
        delete.ExecuteNonQuery();
    }

    private string SnapshotPath(AgentScope scope) => Path.Combine(_snapshotRoot, scope.Tenant, scope.Agent + ".hnsw");

    /// <summary>One agent's partition from its snapshot, if any, and the SQLite rows written after it.</summary>
    private Partition Load(AgentScope scope)
    {
        var partition = new Partition(GraphThreshold) { LastUsed = _timeProvider.GetTimestamp() };
        var snapshot = partition.TryLoadSnapshot(SnapshotPath(scope), Embedder);
        using var connection = _database.Open();
        using var query = connection.CreateCommand();
        // Vectors already in the snapshot's graph are not read again.
        query.CommandText = """
            SELECT id, CASE WHEN version > $covered THEN vector END, text, task_type, success, cost_usd, created_ms, version
            FROM semantic_memories WHERE tenant = $tenant AND agent = $agent AND embedder = $embedder ORDER BY version
            """;
        query.Parameters.AddWithValue("$covered", snapshot?.Version ?? -1);
        query.Parameters.AddWithValue("$embedder", Embedder);
        query.Parameters.AddWithValue("$tenant", scope.Tenant);
        query.Parameters.AddWithValue("$agent", scope.Agent);
        using var reader = query.ExecuteReader();
        var present = new HashSet<string>(StringComparer.Ordinal);
        var replayed = 0;
        while (reader.Read())
        {
            var id = reader.GetString(0);
            present.Add(id);
            var vector = reader.IsDBNull(1) ? ReadOnlyMemory<float>.Empty : MemoryMarshal.Cast<byte, float>((byte[])reader[1]).ToArray();
            var record = new VectorRecord(id, scope, vector, reader.GetString(2), reader.GetString(3),
                reader.GetInt64(4) != 0, reader.GetDouble(5), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)));
            if (vector.IsEmpty)
            {
                partition.Attach(record);
            }
            else
            {
                partition.Upsert(record, reader.GetInt64(7));
                replayed += snapshot is null ? 0 : 1;
            }
        }

        // Deleted after the snapshot was taken.
        partition.RemoveAllBut(present);
        if (snapshot is not null)
        {
            Interlocked.Increment(ref _snapshotsLoaded);
            Interlocked.Add(ref _replayed, replayed);
        }

        return partition;
    }

    /// <summary>
    /// Databases written before a column existed get it with its default: '' for the embedder, which names
    /// no embedder, so their memories are re-embedded rather than compared with another model's vectors.
    /// </summary>
    private static void AddColumnToOlderDatabases(SqliteConnection connection, string column, string definition)
    {
        using var columns = connection.CreateCommand();
        columns.CommandText = "SELECT COUNT(*) FROM pragma_table_info('semantic_memories') WHERE name = $column";
        columns.Parameters.AddWithValue("$column", column);
        if ((long)columns.ExecuteScalar()! == 0)
        {
            SqliteDatabase.Execute(connection, $"ALTER TABLE semantic_memories ADD COLUMN {column} {definition}");
        }
    }

    private sealed record Snapshot(long Version);

    /// <summary>
    /// One agent's memories. Writers serialise on a lock; searches take none: records are found by id in a
    /// concurrent dictionary and by graph node in an array that only grows by copy-and-publish, and the
    /// graph itself allows searches during a write (see <see cref="HnswIndex"/>).
    /// </summary>
    private sealed class Partition(int graphThreshold)
    {
        private readonly Lock _writeLock = new();
        private long _lastUsed;
        private readonly ConcurrentDictionary<string, Entry> _byId = new(StringComparer.Ordinal);
        private VectorRecord?[] _byNode = [];
        private HnswIndex? _graph;
        private long _version;
        private long _savedVersion = -1;

        // Node of each id in the snapshot being loaded, so that attaching a record is a lookup, not a scan.
        private Dictionary<string, int>? _snapshotNodes;

        /// <summary>Held by the index across a write's SQLite and in-memory halves, and by an unload.</summary>
        public Lock WriteLock => _writeLock;

        /// <summary>Set, under <see cref="WriteLock"/>, once the partition left the index: writes must go to a fresh load.</summary>
        public bool Unloaded { get; set; }

        /// <summary>TimeProvider timestamp of the last use.</summary>
        public long LastUsed
        {
            get => Volatile.Read(ref _lastUsed);
            set => Volatile.Write(ref _lastUsed, value);
        }

        public int Count => _byId.Count;

        /// <summary>Graph nodes marked deleted: they still take their vector's RAM.</summary>
        public int DeletedNodes => Volatile.Read(ref _graph) is { } graph ? graph.NodeCount - graph.Count : 0;

        public VectorRecord? Get(string id) => _byId.TryGetValue(id, out var entry) ? entry.Record : null;

        /// <summary>Vector bytes plus UTF-8 text bytes of the live records.</summary>
        public TierUsage Usage()
        {
            var entries = _byId.Values;
            return new TierUsage(entries.Count, entries.Sum(e => (e.Dimensions * (long)sizeof(float)) + Encoding.UTF8.GetByteCount(e.Record.Text)));
        }

        public void Upsert(VectorRecord record, long version)
        {
            lock (_writeLock)
            {
                if (_byId.TryGetValue(record.Id, out var existing))
                {
                    RemoveEntry(existing);
                }
                else if (_snapshotNodes is not null && _snapshotNodes.Remove(record.Id, out var stale))
                {
                    // Rewritten after the snapshot was taken: its node in the loaded graph is out of date.
                    _graph!.Remove(stale);
                    Volatile.Read(ref _byNode)[stale] = null;
                }

                if (_graph is null && _byId.Count + 1 >= graphThreshold)
                {
                    BuildGraph(record.Vector.Length);
                }

                if (_graph is null)
                {
                    _byId[record.Id] = new Entry(record, Node: -1, record.Vector.Length);
                }
                else
                {
                    var node = _graph.NodeCount;
                    var byNode = Volatile.Read(ref _byNode);
                    if (node >= byNode.Length)
                    {
                        var grown = new VectorRecord?[Math.Max(16, byNode.Length * 2)];
                        byNode.CopyTo(grown, 0);
                        Volatile.Write(ref _byNode, byNode = grown);
                    }

                    // In graph mode the vector lives in the graph only.
                    var stored = record with { Vector = ReadOnlyMemory<float>.Empty };
                    byNode[node] = stored;
                    _graph.Add(record.Vector.Span);
                    _byId[record.Id] = new Entry(stored, node, record.Vector.Length);
                }

                _version = Math.Max(_version, version);
            }
        }

        /// <summary>Ties a record loaded without its vector to its node in the snapshot's graph.</summary>
        public void Attach(VectorRecord record)
        {
            lock (_writeLock)
            {
                if (_snapshotNodes?.TryGetValue(record.Id, out var node) == true)
                {
                    Volatile.Read(ref _byNode)[node] = record;
                    _byId[record.Id] = new Entry(record, node, _graph!.Dimensions);
                }
            }
        }

        public bool Remove(string id)
        {
            lock (_writeLock)
            {
                if (!_byId.TryGetValue(id, out var entry))
                {
                    return false;
                }

                RemoveEntry(entry);
                return true;
            }
        }

        /// <summary>The ids of the oldest records (by when written) past the newest <paramref name="keep"/>.</summary>
        public List<string> OldestBeyond(int keep)
        {
            var excess = _byId.Count - keep;
            return excess <= 0
                ? []
                : [.. _byId.Values.Select(e => e.Record).OrderBy(r => r.Created).ThenBy(r => r.Id, StringComparer.Ordinal).Take(excess).Select(r => r.Id)];
        }

        public void RemoveAllBut(HashSet<string> present)
        {
            lock (_writeLock)
            {
                var byNode = Volatile.Read(ref _byNode);
                for (var node = 0; _graph is not null && node < _graph.NodeCount; node++)
                {
                    if (byNode[node] is { } record && !present.Contains(record.Id))
                    {
                        _graph.Remove(node);
                        byNode[node] = null;
                        _byId.TryRemove(record.Id, out _);
                    }
                }

                _snapshotNodes = null;
            }
        }

        public List<VectorMatch> Search(ReadOnlySpan<float> query, int topK, double minSimilarity, VectorFilter filter)
        {
            var graph = Volatile.Read(ref _graph);
            if (graph is not null && query.Length == graph.Dimensions)
            {
                var found = graph.Search(query, topK, Math.Max(graph.EfSearch, 2 * topK),
                    node => Volatile.Read(ref _byNode)[node] is { } r && filter.Matches(r), (float)minSimilarity);
                var byNode = Volatile.Read(ref _byNode);
                return found.Where(f => byNode[f.Node] is not null).Select(f => new VectorMatch(byNode[f.Node]!, f.Similarity)).ToList();
            }

            var best = new PriorityQueue<VectorMatch, double>(topK + 1);
            foreach (var entry in _byId.Values)
            {
                var record = entry.Record;
                if (record.Vector.Length != query.Length || !filter.Matches(record))
                {
                    continue;
                }

                // Vectors are unit length, so the dot product is the cosine similarity.
                double similarity = TensorPrimitives.Dot(record.Vector.Span, query);
                if (similarity < minSimilarity)
                {
                    continue;
                }

                best.Enqueue(new VectorMatch(record, similarity), similarity);
                if (best.Count > topK)
                {
                    best.Dequeue();
                }
            }

            var matches = new List<VectorMatch>(best.Count);
            while (best.Count > 0)
            {
                matches.Add(best.Dequeue());
            }

            matches.Reverse();
            return matches;
        }

        public bool SaveSnapshotIfChanged(string path, string embedder)
        {
            lock (_writeLock)
            {
                if (_graph is null || _savedVersion == _version)
                {
                    return false;
                }

                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                var temporary = path + ".tmp";
                using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
                {
                    writer.Write(SnapshotMagic);
                    writer.Write(embedder);
                    writer.Write(_version);
                    var byNode = Volatile.Read(ref _byNode);
                    writer.Write(_graph.NodeCount);
                    for (var node = 0; node < _graph.NodeCount; node++)
                    {
                        writer.Write(byNode[node]?.Id ?? "");
                    }

                    writer.Flush();
                    _graph.Save(stream);
                    stream.Flush(flushToDisk: true);
                }

                File.Move(temporary, path, overwrite: true);
                _savedVersion = _version;
                return true;
            }
        }

        /// <summary>The snapshot's graph when it exists, is whole and was built for <paramref name="embedder"/>.</summary>
        public Snapshot? TryLoadSnapshot(string path, string embedder)
        {
            if (!File.Exists(path))
            {
                return null;
            }

            try
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
                if (reader.ReadUInt32() != SnapshotMagic || reader.ReadString() != embedder)
                {
                    return null;
                }

                var version = reader.ReadInt64();
                var nodes = reader.ReadInt32();
                var byNode = new VectorRecord?[Math.Max(16, nodes)];
                var placeholder = new AgentScope("", "");
                var snapshotNodes = new Dictionary<string, int>(nodes, StringComparer.Ordinal);
                for (var node = 0; node < nodes; node++)
                {
                    var id = reader.ReadString();
                    if (id.Length > 0)
                    {
                        snapshotNodes[id] = node;
                    }

                    // Filled in by Attach once the record's text and metadata are read from SQLite.
                    byNode[node] = id.Length == 0 ? null : new VectorRecord(id, placeholder, ReadOnlyMemory<float>.Empty, "", "", false, 0, default);
                }

                var graph = HnswIndex.Load(stream);
                _snapshotNodes = snapshotNodes;
                _byNode = byNode;
                _graph = graph;
                _version = _savedVersion = version;
                return new Snapshot(version);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
            {
                // A damaged snapshot only costs a rebuild from SQLite, which holds every record.
                _byNode = [];
                _graph = null;
                return null;
            }
        }

        /// <param name="dimensions">The embedder's: every vector of a partition has as many.</param>
        private void BuildGraph(int dimensions)
        {
            var records = _byId.Values.Select(e => e.Record).Where(r => !r.Vector.IsEmpty).ToList();
            var graph = new HnswIndex(dimensions, capacity: Math.Max(graphThreshold * 2, records.Count));
            var byNode = new VectorRecord?[Math.Max(16, graph.Capacity)];
            foreach (var record in records)
            {
                var stored = record with { Vector = ReadOnlyMemory<float>.Empty };
                var node = graph.Add(record.Vector.Span);
                byNode[node] = stored;
                _byId[record.Id] = new Entry(stored, node, record.Vector.Length);
            }

            Volatile.Write(ref _byNode, byNode);
            Volatile.Write(ref _graph, graph);
        }

        private void RemoveEntry(Entry entry)
        {
            _byId.TryRemove(entry.Record.Id, out _);
            if (entry.Node >= 0 && _graph is not null)
            {
                _graph.Remove(entry.Node);
                Volatile.Read(ref _byNode)[entry.Node] = null;
            }
        }

        private sealed record Entry(VectorRecord Record, int Node, int Dimensions);
    }
}

/// <summary>
/// Unloads idle vector-index partitions every minute, so an agent nobody calls gives its RAM back, and saves
/// changed graphs every <see cref="SnapshotInterval"/>, so a crash replays little on the next load.
/// </summary>
public sealed class VectorIndexMaintenance(InProcessVectorIndex index, TimeProvider timeProvider) : BackgroundService
{
    public static readonly TimeSpan UnloadInterval = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan SnapshotInterval = TimeSpan.FromMinutes(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(UnloadInterval, timeProvider);
        var lastSaved = timeProvider.GetTimestamp();
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            index.UnloadIdle();
            if (timeProvider.GetElapsedTime(lastSaved) >= SnapshotInterval)
            {
                index.SaveSnapshots();
                lastSaved = timeProvider.GetTimestamp();
            }
        }
    }
}
