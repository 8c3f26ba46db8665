using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Memory.Embedded;

/// <summary>
/// Working memory in SQLite. Expiry is enforced on every read; a background sweep only reclaims space.
/// </summary>
public sealed class SqliteWorkingMemoryStore(SqliteDatabase database, TimeProvider timeProvider) : IWorkingMemoryStore
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS working_turns (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            session TEXT NOT NULL,
            prompt TEXT NOT NULL,
            reply TEXT NOT NULL,
            interaction_id TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            expires_at_ms INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS ix_working_turns_session ON working_turns (tenant, agent, session, seq);
        CREATE INDEX IF NOT EXISTS ix_working_turns_expiry ON working_turns (expires_at_ms);
        """;

    public Task AppendAsync(AgentScope scope, string sessionId, WorkingTurn turn, TimeSpan ttl, int maxTurnsPerSession, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        using (var insert = connection.CreateCommand())
        {
            insert.CommandText = """
                INSERT INTO working_turns (tenant, agent, session, prompt, reply, interaction_id, at_ms, expires_at_ms)
                VALUES ($tenant, $agent, $session, $prompt, $reply, $interaction, $at, $expires)
                """;
            AddScope(insert, scope, sessionId);
            insert.Parameters.AddWithValue("$prompt", turn.Prompt);
            insert.Parameters.AddWithValue("$reply", turn.Reply);
            insert.Parameters.AddWithValue("$interaction", turn.InteractionId);
            insert.Parameters.AddWithValue("$at", turn.At.ToUnixTimeMilliseconds());
            insert.Parameters.AddWithValue("$expires", (timeProvider.GetUtcNow() + ttl).ToUnixTimeMilliseconds());
            insert.ExecuteNonQuery();
        }

        using (var trim = connection.CreateCommand())
        {
            trim.CommandText = """
                DELETE FROM working_turns
                WHERE tenant = $tenant AND agent = $agent AND session = $session
                  AND seq NOT IN (SELECT seq FROM working_turns
                                  WHERE tenant = $tenant AND agent = $agent AND session = $session
                                  ORDER BY seq DESC LIMIT $keep)
                """;
            AddScope(trim, scope, sessionId);
            trim.Parameters.AddWithValue("$keep", maxTurnsPerSession);
            trim.ExecuteNonQuery();
        }

        transaction.Commit();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<WorkingTurn>> GetRecentAsync(AgentScope scope, string sessionId, int maxTurns, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = """
            SELECT prompt, reply, interaction_id, at_ms FROM working_turns
            WHERE tenant = $tenant AND agent = $agent AND session = $session AND expires_at_ms > $now
            ORDER BY seq DESC LIMIT $limit
            """;
        AddScope(query, scope, sessionId);
        query.Parameters.AddWithValue("$now", timeProvider.GetUtcNow().ToUnixTimeMilliseconds());
        query.Parameters.AddWithValue("$limit", maxTurns);
        var turns = new List<WorkingTurn>();
        using var reader = query.ExecuteReader();
        while (reader.Read())
        {
            turns.Add(new WorkingTurn(reader.GetString(0), reader.GetString(1), reader.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))));
        }

        turns.Reverse();
        return Task.FromResult<IReadOnlyList<WorkingTurn>>(turns);
    }

    public Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = """
            SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(prompt AS BLOB)) + LENGTH(CAST(reply AS BLOB))), 0) FROM working_turns
            WHERE tenant = $tenant AND agent = $agent AND expires_at_ms > $now
            """;
        query.Parameters.AddWithValue("$tenant", scope.Tenant);
        query.Parameters.AddWithValue("$agent", scope.Agent);
        query.Parameters.AddWithValue("$now", timeProvider.GetUtcNow().ToUnixTimeMilliseconds());
        using var reader = query.ExecuteReader();
        reader.Read();
        return Task.FromResult(new TierUsage(reader.GetInt64(0), reader.GetInt64(1)));
    }

    public Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM working_turns WHERE tenant = $tenant AND agent = $agent";
        delete.Parameters.AddWithValue("$tenant", scope.Tenant);
        delete.Parameters.AddWithValue("$agent", scope.Agent);
        return Task.FromResult((long)delete.ExecuteNonQuery());
    }

    /// <returns>How many expired turns were deleted.</returns>
    public int SweepExpired()
    {
        using var connection = database.Open();
        using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM working_turns WHERE expires_at_ms <= $now";
        delete.Parameters.AddWithValue("$now", timeProvider.GetUtcNow().ToUnixTimeMilliseconds());
        return delete.ExecuteNonQuery();
    }

    private static void AddScope(SqliteCommand command, AgentScope scope, string sessionId)
    {
        command.Parameters.AddWithValue("$tenant", scope.Tenant);
        command.Parameters.AddWithValue("$agent", scope.Agent);
        command.Parameters.AddWithValue("$session", sessionId);
    }
}

/// <summary>Reclaims the space of expired working memory on a timer.</summary>
public sealed class WorkingMemorySweeper(SqliteWorkingMemoryStore store, IOptions<MemoryOptions> options, TimeProvider timeProvider) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, timeProvider);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            store.SweepExpired();
        }
    }
}
