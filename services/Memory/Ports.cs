namespace PersistentAgents.Memory;

// The memory service's storage ports. Each has an embedded adapter (SQLite, files, an in-process index)
// and a Dapr adapter; the host's composition root picks one.

/// <summary>Who a memory belongs to. Every store keys by both parts, so no query crosses agents or tenants.</summary>
public readonly record struct AgentScope(string Tenant, string Agent);

public sealed record WorkingTurn(string Prompt, string Reply, string InteractionId, DateTimeOffset At);

/// <summary>Working memory: a session's recent turns, each expiring after its TTL.</summary>
public interface IWorkingMemoryStore
{
    Task AppendAsync(AgentScope scope, string sessionId, WorkingTurn turn, TimeSpan ttl, int maxTurnsPerSession, CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="maxTurns"/> unexpired turns, oldest first.</summary>
    Task<IReadOnlyList<WorkingTurn>> GetRecentAsync(AgentScope scope, string sessionId, int maxTurns, CancellationToken cancellationToken);

    Task<long> CountAsync(AgentScope scope, CancellationToken cancellationToken);
}

public sealed record VectorRecord(string Id, AgentScope Scope, ReadOnlyMemory<float> Vector, string Text, string TaskType, bool Success, double CostUsd, DateTimeOffset Created);

public sealed record VectorMatch(VectorRecord Record, double Similarity);

/// <summary>Semantic memory: unit-length vectors with metadata, searched by cosine similarity within one scope.</summary>
public interface IVectorStore
{
    Task UpsertAsync(VectorRecord record, CancellationToken cancellationToken);

    Task<IReadOnlyList<VectorMatch>> SearchAsync(AgentScope scope, ReadOnlyMemory<float> query, int topK, double minSimilarity, CancellationToken cancellationToken);

    Task<long> CountAsync(AgentScope scope, CancellationToken cancellationToken);
}

/// <summary>Episodic memory: every interaction as one blob, kept for the retention window.</summary>
public interface IEpisodeStore
{
    /// <returns>Where the episode was written.</returns>
    Task<string> AppendAsync(AgentScope scope, string interactionId, DateTimeOffset at, string json, CancellationToken cancellationToken);

    Task<long> CountAsync(AgentScope scope, CancellationToken cancellationToken);
}
