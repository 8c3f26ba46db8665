using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Memory.Embedded;

/// <summary>
/// Semantic memory in process: one partition per agent, exact cosine search over unit vectors with SIMD
/// dot products, every upsert written through to SQLite and loaded back on start.
/// </summary>
public sealed class InProcessVectorIndex : IVectorStore
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
            PRIMARY KEY (tenant, agent, id));
        """;

    private readonly SqliteDatabase _database;
    private readonly ConcurrentDictionary<AgentScope, Partition> _partitions = new();

    public InProcessVectorIndex(SqliteDatabase database)
    {
        _database = database;
        Load();
    }

    public Task UpsertAsync(VectorRecord record, CancellationToken cancellationToken)
    {
        using (var connection = _database.Open())
        using (var upsert = connection.CreateCommand())
        {
            upsert.CommandText = """
                INSERT INTO semantic_memories (tenant, agent, id, vector, text, task_type, success, cost_usd, created_ms)
                VALUES ($tenant, $agent, $id, $vector, $text, $task, $success, $cost, $created)
                ON CONFLICT (tenant, agent, id) DO UPDATE SET
                    vector = excluded.vector, text = excluded.text, task_type = excluded.task_type,
                    success = excluded.success, cost_usd = excluded.cost_usd, created_ms = excluded.created_ms
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
            upsert.ExecuteNonQuery();
        }

        _partitions.GetOrAdd(record.Scope, _ => new Partition()).Upsert(record);
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

        return Task.FromResult(_partitions.TryRemove(scope, out var partition) ? (long)partition.Usage().Items : 0L);
    }

    private void Load()
    {
        using var connection = _database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT tenant, agent, id, vector, text, task_type, success, cost_usd, created_ms FROM semantic_memories";
        using var reader = query.ExecuteReader();
        while (reader.Read())
        {
            var scope = new AgentScope(reader.GetString(0), reader.GetString(1));
            var vector = MemoryMarshal.Cast<byte, float>((byte[])reader[3]).ToArray();
            var record = new VectorRecord(
                reader.GetString(2), scope, vector, reader.GetString(4), reader.GetString(5),
                reader.GetInt64(6) != 0, reader.GetDouble(7), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)));
            _partitions.GetOrAdd(scope, _ => new Partition()).Upsert(record);
        }
    }

    /// <summary>
    /// One agent's vectors. Writers swap in a new snapshot under a lock; readers search the snapshot they
    /// got without locking, so a search never sees a half-applied upsert.
    /// </summary>
    private sealed class Partition
    {
        private readonly Lock _writeLock = new();
        private VectorRecord[] _records = [];

        public VectorRecord? Get(string id) => Array.Find(Volatile.Read(ref _records), r => r.Id == id);

        /// <summary>Vector bytes plus UTF-8 text bytes of the live records.</summary>
        public TierUsage Usage()
        {
            var records = Volatile.Read(ref _records);
            return new TierUsage(records.Length, records.Sum(r => (r.Vector.Length * (long)sizeof(float)) + System.Text.Encoding.UTF8.GetByteCount(r.Text)));
        }

        public bool Remove(string id)
        {
            lock (_writeLock)
            {
                var current = _records;
                var position = Array.FindIndex(current, r => r.Id == id);
                if (position < 0)
                {
                    return false;
                }

                Volatile.Write(ref _records, [.. current.AsSpan(0, position), .. current.AsSpan(position + 1)]);
                return true;
            }
        }

        public void Upsert(VectorRecord record)
        {
            lock (_writeLock)
            {
                var current = _records;
                var position = Array.FindIndex(current, r => r.Id == record.Id);
                var next = position >= 0 ? (VectorRecord[])current.Clone() : [.. current, record];
                if (position >= 0)
                {
                    next[position] = record;
                }

                Volatile.Write(ref _records, next);
            }
        }

        public List<VectorMatch> Search(ReadOnlySpan<float> query, int topK, double minSimilarity, VectorFilter filter)
        {
            var best = new PriorityQueue<VectorMatch, double>(topK + 1);
            foreach (var record in Volatile.Read(ref _records))
            {
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
    }
}
