using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dapr;
using Dapr.Client;
using PersistentAgents.Contracts;

namespace PersistentAgents.Memory.Dapr;

/// <summary>
/// Working memory on a Dapr state store (<see cref="DaprComponents.WorkingMemory"/>).
/// <para>
/// One key per session holds its turns in order, each with its own expiry: reads drop expired turns, writes
/// trim to the newest <c>maxTurnsPerSession</c> and set <c>ttlInSeconds</c> to the longest remaining life in
/// the key, so the store forgets a session once all of its turns are gone. One index key per agent lists
/// the agent's sessions (with the same kind of expiry) so usage and purge need no key scan, which Dapr's
/// state API does not offer.
/// </para>
/// <para>
/// Every write is a read-modify-write guarded by the ETag it read (first-write concurrency; a missing key
/// is created only if still missing), retried on conflict, so two concurrent appends to one session both
/// land. Keys are <c>working/{tenant}/{agent}/session/{session}</c> and <c>working/{tenant}/{agent}/sessions</c>
/// with every part percent-escaped, so no name can produce another agent's or tenant's key.
/// </para>
/// </summary>
public sealed class DaprWorkingMemoryStore(DaprClient dapr, TimeProvider timeProvider, string storeName = DaprComponents.WorkingMemory) : IWorkingMemoryStore
{
    /// <summary>The request metadata key Dapr state stores read the time to live from.</summary>
    public const string TtlMetadataKey = "ttlInSeconds";

    private const int MaxAttempts = 32;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    private static readonly StateOptions FirstWrite = new() { Concurrency = ConcurrencyMode.FirstWrite };

    public static string SessionKey(AgentScope scope, string sessionId) =>
        $"{AgentPrefix(scope)}/session/{Escape(sessionId)}";

    public static string IndexKey(AgentScope scope) => $"{AgentPrefix(scope)}/sessions";

    public async Task AppendAsync(AgentScope scope, string sessionId, WorkingTurn turn, TimeSpan ttl, int maxTurnsPerSession, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        ArgumentNullException.ThrowIfNull(turn);
        var sessionKey = SessionKey(scope, sessionId);
        var expires = timeProvider.GetUtcNow() + ttl;

        var sessionExpires = await UpdateAsync<SessionState>(sessionKey, (session, now) =>
        {
            var turns = session?.Turns.Where(t => t.ExpiresAt > now).ToList() ?? [];
            turns.Add(new StoredTurn(turn.Prompt, turn.Reply, turn.InteractionId, turn.At, expires));
            if (turns.Count > Math.Max(maxTurnsPerSession, 0))
            {
                turns.RemoveRange(0, turns.Count - Math.Max(maxTurnsPerSession, 0));
            }

            return turns.Count == 0 ? null : new SessionState(turns);
        }, state => state.Turns.Max(t => t.ExpiresAt), cancellationToken);

        if (sessionExpires is null)
        {
            return;
        }

        await UpdateAsync<SessionIndex>(IndexKey(scope), (index, now) =>
        {
            var sessions = index?.Sessions.Where(s => s.ExpiresAt > now && s.Id != sessionId).ToList() ?? [];
            sessions.Add(new IndexedSession(sessionId, sessionExpires.Value));
            return new SessionIndex(sessions);
        }, state => state.Sessions.Max(s => s.ExpiresAt), cancellationToken);
    }

    public async Task<IReadOnlyList<WorkingTurn>> GetRecentAsync(AgentScope scope, string sessionId, int maxTurns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        if (maxTurns <= 0)
        {
            return [];
        }

        var session = await dapr.GetStateAsync<SessionState>(storeName, SessionKey(scope, sessionId), cancellationToken: cancellationToken);
        var now = timeProvider.GetUtcNow();
        var live = Live(session, now);
        return live.Skip(Math.Max(0, live.Count - maxTurns)).Select(t => t.ToTurn()).ToList();
    }

    public async Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        long items = 0, bytes = 0;
        foreach (var turn in (await ReadSessionsAsync(scope, cancellationToken)).Values.SelectMany(t => t))
        {
            items++;
            bytes += Encoding.UTF8.GetByteCount(turn.Prompt) + Encoding.UTF8.GetByteCount(turn.Reply);
        }

        return new TierUsage(items, bytes);
    }

    public async Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var sessions = await ReadSessionsAsync(scope, cancellationToken);
        foreach (var key in sessions.Keys)
        {
            await dapr.DeleteStateAsync(storeName, key, cancellationToken: cancellationToken);
        }

        await dapr.DeleteStateAsync(storeName, IndexKey(scope), cancellationToken: cancellationToken);
        return sessions.Values.Sum(turns => (long)turns.Count);
    }

    /// <summary>The unexpired turns of each session the agent's index names, by session key.</summary>
    private async Task<Dictionary<string, List<StoredTurn>>> ReadSessionsAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var index = await dapr.GetStateAsync<SessionIndex>(storeName, IndexKey(scope), cancellationToken: cancellationToken);
        var keys = index?.Sessions.Select(s => SessionKey(scope, s.Id)).Distinct(StringComparer.Ordinal).ToList() ?? [];
        var sessions = new Dictionary<string, List<StoredTurn>>(StringComparer.Ordinal);
        if (keys.Count == 0)
        {
            return sessions;
        }

        var now = timeProvider.GetUtcNow();
        foreach (var item in await dapr.GetBulkStateAsync(storeName, keys, parallelism: null, cancellationToken: cancellationToken))
        {
            if (!string.IsNullOrEmpty(item.Value))
            {
                sessions[item.Key] = Live(JsonSerializer.Deserialize<SessionState>(item.Value, Json), now);
            }
        }

        return sessions;
    }

    /// <summary>
    /// Read, change and write back one key under its ETag until no other writer got in between.
    /// <paramref name="change"/> returns null to leave the key alone.
    /// </summary>
    /// <returns>The expiry the written value got, or null when nothing was written.</returns>
    private async Task<DateTimeOffset?> UpdateAsync<T>(string key, Func<T?, DateTimeOffset, T?> change, Func<T, DateTimeOffset> expiryOf, CancellationToken cancellationToken)
        where T : class
    {
        for (var attempt = 1; ; attempt++)
        {
            var (current, etag) = await dapr.GetStateAndETagAsync<T>(storeName, key, cancellationToken: cancellationToken);
            var now = timeProvider.GetUtcNow();
            var next = change(current, now);
            if (next is null)
            {
                return null;
            }

            var expires = expiryOf(next);
            var metadata = new Dictionary<string, string>
            {
                [TtlMetadataKey] = TtlSeconds(expires - now).ToString(CultureInfo.InvariantCulture),
            };

            bool saved;
            try
            {
                // An empty ETag with first-write concurrency means "only if the key does not exist yet".
                saved = await dapr.TrySaveStateAsync(storeName, key, next, etag ?? "", FirstWrite, metadata, cancellationToken);
            }
            catch (DaprException) when (string.IsNullOrEmpty(etag) && attempt < MaxAttempts)
            {
                // Some stores report a lost create race as a plain failure rather than an ETag mismatch;
                // reading again tells the two apart (the key now exists) from a real failure (it throws again).
                saved = false;
            }

            if (saved)
            {
                return expires;
            }

            if (attempt >= MaxAttempts)
            {
                throw new InvalidOperationException($"Working memory key '{key}' kept changing under {MaxAttempts} attempts to update it");
            }

            // Real time, not the injected clock: a backoff must pass even under a test's frozen clock.
            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 5 * attempt)), cancellationToken);
        }
    }

    private static List<StoredTurn> Live(SessionState? session, DateTimeOffset now) =>
        session?.Turns.Where(t => t.ExpiresAt > now).ToList() ?? [];

    /// <summary>Whole seconds, rounded up, at least one: Dapr reads -1 as "never" and rejects 0 on some stores.</summary>
    private static long TtlSeconds(TimeSpan remaining) => Math.Max(1, (long)Math.Ceiling(remaining.TotalSeconds));

    private static string AgentPrefix(AgentScope scope) =>
        $"working/{Escape(NotEmpty(scope.Tenant, "tenant"))}/{Escape(NotEmpty(scope.Agent, "agent"))}";

    private static string NotEmpty(string? value, string what) =>
        string.IsNullOrEmpty(value) ? throw new ArgumentException($"{what} must not be empty", what) : value;

    /// <summary>
    /// Percent-escapes everything but letters, digits and <c>-_.~</c>, so a part can never contain the
    /// <c>/</c> that separates parts nor Dapr's own <c>||</c> key separator, and distinct names stay distinct.
    /// </summary>
    private static string Escape(string part) => Uri.EscapeDataString(part);

    private sealed record SessionState(List<StoredTurn> Turns);

    private sealed record StoredTurn(string Prompt, string Reply, string InteractionId, DateTimeOffset At, DateTimeOffset ExpiresAt)
    {
        public WorkingTurn ToTurn() => new(Prompt, Reply, InteractionId, At);
    }

    private sealed record SessionIndex(List<IndexedSession> Sessions);

    private sealed record IndexedSession(string Id, DateTimeOffset ExpiresAt);
}
