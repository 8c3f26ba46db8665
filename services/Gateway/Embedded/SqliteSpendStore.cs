using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Gateway.Embedded;

/// <summary>Daily spend per agent in SQLite, so budgets hold across restarts.</summary>
public sealed class SqliteSpendStore(SqliteDatabase database) : ISpendStore
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS agent_spend (
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            day TEXT NOT NULL,
            usd REAL NOT NULL,
            PRIMARY KEY (tenant, agent, day));
        """;

    public async Task<double> SpentOnAsync(string tenant, string agent, DateOnly day, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT usd FROM agent_spend WHERE tenant = $tenant AND agent = $agent AND day = $day";
        query.Parameters.AddWithValue("$tenant", tenant);
        query.Parameters.AddWithValue("$agent", agent);
        query.Parameters.AddWithValue("$day", day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        return await query.ExecuteScalarAsync(cancellationToken) is double usd ? usd : 0;
    }

    public async Task AddAsync(string tenant, string agent, DateOnly day, double usd, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var upsert = connection.CreateCommand();
        upsert.CommandText = """
            INSERT INTO agent_spend (tenant, agent, day, usd) VALUES ($tenant, $agent, $day, $usd)
            ON CONFLICT (tenant, agent, day) DO UPDATE SET usd = usd + excluded.usd
            """;
        upsert.Parameters.AddWithValue("$tenant", tenant);
        upsert.Parameters.AddWithValue("$agent", agent);
        upsert.Parameters.AddWithValue("$day", day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        upsert.Parameters.AddWithValue("$usd", usd);
        await upsert.ExecuteNonQueryAsync(cancellationToken);
    }
}
