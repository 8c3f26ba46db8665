using PersistentAgents.Embeddings;
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
/// graph. Every write goes through to SQLite first. Graphs are saved as snapshots (on stop and by
/// <see cref="VectorIndexSnapshotter"/>), each with the write version it covers, so a restart loads the
/// graph and replays only what changed after it instead of rebuilding from scratch.
/// </summary>
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
            PRIMARY KEY (tenant, agent, id));
        """;

    // Created after the version column exists (older databases get it added on open), so MAX(version) on
    // every upsert is an index lookup rather than a scan of the vectors.
    private const string VersionIndex = "CREATE INDEX IF NOT EXISTS ix_semantic_memories_version ON semantic_memories (version)";

    public const int DefaultGraphThreshold = 1_000;
    private const uint SnapshotMagic = 0x50534E53; // "SNSP"

    private readonly SqliteDatabase _database;
    private readonly string _snapshotRoot;
    private readonly ConcurrentDictionary<AgentScope, Partition> _partitions = new();

    public InProcessVectorIndex(SqliteDatabase database, string dataDirectory, int graphThreshold = DefaultGraphThreshold)
    {
        _database = database;
        _snapshotRoot = Path.Combine(dataDirectory, "vector-index");
        GraphThreshold = graphThreshold;
        Load();
    }

    public int GraphThreshold { get; }

    /// <summary>Partitions loaded from a snapshot at start, and records replayed into them since.</summary>
    public (int Snapshots, int Replayed) Restored { get; private set; }

    public Task UpsertAsync(VectorRecord record, CancellationToken cancellationToken)
    {
        using (var connection = _database.Open())
        using (var upsert = connection.CreateCommand())
        {
            upsert.CommandText = """
                INSERT INTO semantic_memories (tenant, agent, id, vector, text, task_type, success, cost_usd, created_ms, version)
                VALUES ($tenant, $agent, $id, $vector, $text, $task, $success, $cost, $created,
                        (SELECT COALESCE(MAX(version), 0) + 1 FROM semantic_memories))
                ON CONFLICT (tenant, agent, id) DO UPDATE SET
                    vector = excluded.vector, text = excluded.text, task_type = excluded.task_type,
                    success = excluded.success, cost_usd = excluded.cost_usd, created_ms = excluded.created_ms,
                    version = excluded.version
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
            var version = (long)upsert.ExecuteScalar()!;
            PartitionOf(record.Scope).Upsert(record, version);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<VectorMatch>> SearchAsync(AgentScope scope, ReadOnlyMemory<float> query, int topK, double minSimilarity, VectorFilter filter, CancellationToken cancellationToken)
    {
        IReadOnlyList<VectorMatch> matches = _partitions.TryGetValue(scope, out var partition)
            ? partition.Search(query.Span, topK, minSimilarity, filter)
            : [];
        return Task.FromResult(matches);
    }

    public Task<VectorRecord?> GetAsync(AgentScope scope, string id, CancellationToken cancellationToken) =>
        Task.FromResult(_partitions.TryGetValue(scope, out var partition) ? partition.Get(id) : null);

    public Task<bool> DeleteAsync(AgentScope scope, string id, CancellationToken cancellationToken)
    {
        using (var connection = _database.Open())
        using (var delete = connection.CreateCommand())
        {
            delete.CommandText = "DELETE FROM semantic_memories WHERE tenant = $tenant AND agent = $agent AND id = $id";
            delete.Parameters.AddWithValue("$tenant", scope.Tenant);
            delete.Parameters.AddWithValue("$agent", scope.Agent);
            delete.Parameters.AddWithValue("$id", id);
            delete.ExecuteNonQuery();
        }

        return Task.FromResult(_partitions.TryGetValue(scope, out var partition) && partition.Remove(id));
    }

    public Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken) =>
        Task.FromResult(_partitions.TryGetValue(scope, out var partition) ? partition.Usage() : new TierUsage(0, 0));

    public Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        using (var connection = _database.Open())
        using (var delete = connection.CreateCommand())
        {
            delete.CommandText = "DELETE FROM semantic_memories WHERE tenant = $tenant AND agent = $agent";
            delete.Parameters.AddWithValue("$tenant", scope.Tenant);
            delete.Parameters.AddWithValue("$agent", scope.Agent);
            delete.ExecuteNonQuery();
        }

        var snapshot = SnapshotPath(scope);
        if (File.Exists(snapshot))
        {
            File.Delete(snapshot);
        }

        return Task.FromResult(_partitions.TryRemove(scope, out var partition) ? (long)partition.Usage().Items : 0L);
    }

    /// <summary>Saves the graph of every partition changed since its last snapshot.</summary>
    /// <returns>How many snapshots were written.</returns>
    public int SaveSnapshots()
    {
        var saved = 0;
        foreach (var (scope, partition) in _partitions)
        {
            saved += partition.SaveSnapshotIfChanged(SnapshotPath(scope)) ? 1 : 0;
        }

        return saved;
    }

    public void Dispose() => SaveSnapshots();

    private Partition PartitionOf(AgentScope scope) => _partitions.GetOrAdd(scope, _ => new Partition(GraphThreshold));

    private string SnapshotPath(AgentScope scope) => Path.Combine(_snapshotRoot, scope.Tenant, scope.Agent + ".hnsw");

    private void Load()
    {
        using var connection = _database.Open();
        AddVersionColumnToOlderDatabases(connection);
        SqliteDatabase.Execute(connection, VersionIndex);
        var snapshots = 0;
        var replayed = 0;
        foreach (var scope in Scopes(connection))
        {
            var partition = new Partition(GraphThreshold);
            var snapshot = partition.TryLoadSnapshot(SnapshotPath(scope));
            snapshots += snapshot is null ? 0 : 1;
            using var query = connection.CreateCommand();
            // Vectors already in the snapshot's graph are not read again.
            query.CommandText = """
                SELECT id, CASE WHEN version > $covered THEN vector END, text, task_type, success, cost_usd, created_ms, version
                FROM semantic_memories WHERE tenant = $tenant AND agent = $agent ORDER BY version
                """;
            query.Parameters.AddWithValue("$covered", snapshot?.Version ?? -1);
            query.Parameters.AddWithValue("$tenant", scope.Tenant);
            query.Parameters.AddWithValue("$agent", scope.Agent);
            using var reader = query.ExecuteReader();
            var present = new HashSet<string>(StringComparer.Ordinal);
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
            _partitions[scope] = partition;
        }

        Restored = (snapshots, replayed);
    }

    private static void AddVersionColumnToOlderDatabases(SqliteConnection connection)
    {
        using var columns = connection.CreateCommand();
        columns.CommandText = "SELECT COUNT(*) FROM pragma_table_info('semantic_memories') WHERE name = 'version'";
        if ((long)columns.ExecuteScalar()! == 0)
        {
            SqliteDatabase.Execute(connection, "ALTER TABLE semantic_memories ADD COLUMN version INTEGER NOT NULL DEFAULT 0");
        }
    }

    private static List<AgentScope> Scopes(SqliteConnection connection)
    {
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT DISTINCT tenant, agent FROM semantic_memories";
        using var reader = query.ExecuteReader();
        var scopes = new List<AgentScope>();
        while (reader.Read())
        {
            scopes.Add(new AgentScope(reader.GetString(0), reader.GetString(1)));
        }

        return scopes;
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
        private readonly ConcurrentDictionary<string, Entry> _byId = new(StringComparer.Ordinal);
        private VectorRecord?[] _byNode = [];
        private HnswIndex? _graph;
        private long _version;
        private long _savedVersion = -1;

        // Node of each id in the snapshot being loaded, so that attaching a record is a lookup, not a scan.
        private Dictionary<string, int>? _snapshotNodes;

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
                    BuildGraph();
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

        public bool SaveSnapshotIfChanged(string path)
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

        public Snapshot? TryLoadSnapshot(string path)
        {
            if (!File.Exists(path))
            {
                return null;
            }

            try
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
                if (reader.ReadUInt32() != SnapshotMagic)
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

        private void BuildGraph()
        {
            var records = _byId.Values.Select(e => e.Record).Where(r => !r.Vector.IsEmpty).ToList();
            var graph = new HnswIndex(records.Count == 0 ? HashedNGramEmbedder.DefaultDimensions : records[0].Vector.Length, capacity: Math.Max(graphThreshold * 2, records.Count));
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

/// <summary>Saves changed vector-index graphs on a timer, so a crash replays little on restart.</summary>
public sealed class VectorIndexSnapshotter(InProcessVectorIndex index, TimeProvider timeProvider) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, timeProvider);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            index.SaveSnapshots();
        }
    }
}
