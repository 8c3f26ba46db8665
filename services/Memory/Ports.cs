namespace PersistentAgents.Memory;

// The memory service's storage ports. Each has an embedded adapter (SQLite, files, an in-process index)
// and a Dapr adapter; the host's composition root picks one. Every method takes the agent's scope, and
// no adapter returns, counts or deletes anything outside it.

/// <summary>Who a memory belongs to. Every store keys by both parts, so no query crosses agents or tenants.</summary>
public readonly record struct AgentScope(string Tenant, string Agent);

/// <summary>How much one agent keeps in one tier.</summary>
public readonly record struct TierUsage(long Items, long Bytes);

public sealed record WorkingTurn(string Prompt, string Reply, string InteractionId, DateTimeOffset At);

/// <summary>Working memory: a session's recent turns, each expiring after its TTL.</summary>
public interface IWorkingMemoryStore
{
    Task AppendAsync(AgentScope scope, string sessionId, WorkingTurn turn, TimeSpan ttl, int maxTurnsPerSession, CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="maxTurns"/> unexpired turns, oldest first.</summary>
    Task<IReadOnlyList<WorkingTurn>> GetRecentAsync(AgentScope scope, string sessionId, int maxTurns, CancellationToken cancellationToken);

    /// <summary>Unexpired turns over all the agent's sessions.</summary>
    Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken);

    /// <returns>How many turns were deleted.</returns>
    Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken);
}

public sealed record VectorRecord(string Id, AgentScope Scope, ReadOnlyMemory<float> Vector, string Text, string TaskType, bool Success, double CostUsd, DateTimeOffset Created);

public sealed record VectorMatch(VectorRecord Record, double Similarity);

/// <summary>Metadata conditions a recalled memory must meet.</summary>
public sealed record VectorFilter(string? TaskType = null, bool SuccessfulOnly = false)
{
    public static readonly VectorFilter None = new();

    public bool Matches(VectorRecord record) =>
        (TaskType is null || record.TaskType == TaskType) && (!SuccessfulOnly || record.Success);
}

/// <summary>
/// A memory whose vector another embedder made (or an embedder from before vectors recorded theirs): it
/// cannot be compared with this store's vectors until its text is embedded again.
/// </summary>
public sealed record StaleMemory(AgentScope Scope, string Id, string Text, string Embedder);

/// <summary>
/// Semantic memory: unit-length vectors with metadata, searched by cosine similarity within one scope. A
/// store is built for one embedder (<see cref="Embedder"/>, as <c>Embedders.IdOf</c> names it): it writes and
/// searches only that embedder's vectors, so no search ever mixes two models; memories written by another
/// embedder stay stored, unseen by search, until <see cref="ReplaceStaleAsync"/> gives them a vector again.
/// </summary>
public interface IVectorStore
{
    /// <summary>The embedder whose vectors this store writes and searches, e.g. <c>all-MiniLM-L6-v2@384</c>.</summary>
    string Embedder { get; }

    Task UpsertAsync(VectorRecord record, CancellationToken cancellationToken);

    /// <summary>The <paramref name="topK"/> most similar records at or above the floor, most similar first.</summary>
    Task<IReadOnlyList<VectorMatch>> SearchAsync(AgentScope scope, ReadOnlyMemory<float> query, int topK, double minSimilarity, VectorFilter filter, CancellationToken cancellationToken);

    Task<VectorRecord?> GetAsync(AgentScope scope, string id, CancellationToken cancellationToken);

    /// <returns>False when there was no such record.</returns>
    Task<bool> DeleteAsync(AgentScope scope, string id, CancellationToken cancellationToken);

    Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken);

    /// <returns>How many records were deleted.</returns>
    Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken);

    /// <summary>At most <paramref name="limit"/> memories of any agent whose vector is not this store's embedder's, newest first.</summary>
    Task<IReadOnlyList<StaleMemory>> ListStaleAsync(int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Gives a stale memory <paramref name="vector"/>, made by this store's embedder from its text; nothing
    /// happens when the memory was rewritten or deleted since it was listed.
    /// </summary>
    /// <returns>Whether the memory was updated.</returns>
    Task<bool> ReplaceStaleAsync(StaleMemory memory, ReadOnlyMemory<float> vector, CancellationToken cancellationToken);

    /// <summary>The scope's memories that search cannot see yet because another embedder made their vectors.</summary>
    Task<long> CountStaleAsync(AgentScope scope, CancellationToken cancellationToken);
}

/// <summary>One stored episode: its interaction, UTC day, where it is and its size.</summary>
public sealed record EpisodeEntry(string InteractionId, DateOnly Day, string Location, long Bytes);

/// <summary>
/// Episodic memory: every interaction as one blob at <c>episodes/{tenant}/{agent}/{yyyy-MM-dd}/{id}.json</c>,
/// kept for the retention window.
/// </summary>
public interface IEpisodeStore
{
    /// <returns>Where the episode was written.</returns>
    Task<string> AppendAsync(AgentScope scope, string interactionId, DateTimeOffset at, string json, CancellationToken cancellationToken);

    /// <returns>The episode's JSON, or null when there is none.</returns>
    Task<string?> GetAsync(AgentScope scope, string interactionId, DateOnly day, CancellationToken cancellationToken);

    /// <summary>Episodes of the inclusive day range, oldest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<EpisodeEntry>> ListAsync(AgentScope scope, DateOnly firstDay, DateOnly lastDay, int limit, CancellationToken cancellationToken);

    /// <summary>Every agent that has at least one episode.</summary>
    Task<IReadOnlyList<AgentScope>> ListScopesAsync(CancellationToken cancellationToken);

    /// <summary>Retention: deletes every agent's episodes of days before <paramref name="cutoff"/>.</summary>
    /// <returns>How many episodes were deleted.</returns>
    Task<long> DeleteBeforeAsync(DateOnly cutoff, CancellationToken cancellationToken);

    Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken);

    /// <returns>How many episodes were deleted.</returns>
    Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken);
}
