using System.Text.Json;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Agents.Embedded;

/// <summary>Agent state in SQLite: one JSON document per agent.</summary>
public sealed class SqliteAgentStateStore(SqliteDatabase database) : IAgentStateStore
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS agent_state (
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            aggregate_json TEXT NOT NULL,
            PRIMARY KEY (tenant, agent));
        """;

    public Task<AgentAggregate?> LoadAsync(AgentId agent, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT aggregate_json FROM agent_state WHERE tenant = $tenant AND agent = $agent";
        query.Parameters.AddWithValue("$tenant", agent.Tenant);
        query.Parameters.AddWithValue("$agent", agent.Name);
        return Task.FromResult(query.ExecuteScalar() is string json ? JsonSerializer.Deserialize<AgentAggregate>(json) : null);
    }

    public Task SaveAsync(AgentId agent, AgentAggregate aggregate, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var upsert = connection.CreateCommand();
        upsert.CommandText = """
            INSERT INTO agent_state (tenant, agent, aggregate_json) VALUES ($tenant, $agent, $json)
            ON CONFLICT (tenant, agent) DO UPDATE SET aggregate_json = excluded.aggregate_json
            """;
        upsert.Parameters.AddWithValue("$tenant", agent.Tenant);
        upsert.Parameters.AddWithValue("$agent", agent.Name);
        upsert.Parameters.AddWithValue("$json", JsonSerializer.Serialize(aggregate));
        upsert.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task DeleteAsync(AgentId agent, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM agent_state WHERE tenant = $tenant AND agent = $agent";
        delete.Parameters.AddWithValue("$tenant", agent.Tenant);
        delete.Parameters.AddWithValue("$agent", agent.Name);
        delete.ExecuteNonQuery();
        return Task.CompletedTask;
    }
}
