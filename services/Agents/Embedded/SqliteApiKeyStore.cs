using PersistentAgents.Agents.Security;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Agents.Embedded;

/// <summary>API keys in SQLite, looked up by the hash of the presented key.</summary>
public sealed class SqliteApiKeyStore(SqliteDatabase database) : IApiKeyStore
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS api_keys (
            id TEXT PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            scope TEXT NOT NULL,
            prefix TEXT NOT NULL,
            requests_per_minute INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT);
        """;

    private const string Columns = "id, hash, tenant, name, scope, prefix, requests_per_minute, created_at, revoked_at";

    public Task AddAsync(ApiKeyRecord key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var connection = database.Open();
        using var insert = connection.CreateCommand();
        insert.CommandText = $"INSERT INTO api_keys ({Columns}) VALUES ($id, $hash, $tenant, $name, $scope, $prefix, $rpm, $created, NULL)";
        insert.Parameters.AddWithValue("$id", key.Id);
        insert.Parameters.AddWithValue("$hash", key.Hash);
        insert.Parameters.AddWithValue("$tenant", key.Tenant);
        insert.Parameters.AddWithValue("$name", key.Name);
        insert.Parameters.AddWithValue("$scope", key.Scope);
        insert.Parameters.AddWithValue("$prefix", key.Prefix);
        insert.Parameters.AddWithValue("$rpm", key.RequestsPerMinute);
        insert.Parameters.AddWithValue("$created", key.CreatedAt.ToString("O"));
        insert.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<ApiKeyRecord?> FindByHashAsync(string hash, CancellationToken cancellationToken) =>
        Task.FromResult(Query("WHERE hash = $value", hash).SingleOrDefault());

    public Task<IReadOnlyList<ApiKeyRecord>> ListAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ApiKeyRecord>>(Query("", null));

    public Task<ApiKeyRecord?> RevokeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        using (var connection = database.Open())
        using (var update = connection.CreateCommand())
        {
            update.CommandText = "UPDATE api_keys SET revoked_at = $at WHERE id = $id AND revoked_at IS NULL";
            update.Parameters.AddWithValue("$id", id);
            update.Parameters.AddWithValue("$at", at.ToString("O"));
            update.ExecuteNonQuery();
        }

        return Task.FromResult(Query("WHERE id = $value", id).SingleOrDefault());
    }

    private List<ApiKeyRecord> Query(string where, string? value)
    {
        using var connection = database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = $"SELECT {Columns} FROM api_keys {where}";
        if (value is not null)
        {
            query.Parameters.AddWithValue("$value", value);
        }

        using var reader = query.ExecuteReader();
        var records = new List<ApiKeyRecord>();
        while (reader.Read())
        {
            records.Add(new ApiKeyRecord(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                reader.GetInt32(6), DateTimeOffset.Parse(reader.GetString(7), System.Globalization.CultureInfo.InvariantCulture),
                reader.IsDBNull(8) ? null : DateTimeOffset.Parse(reader.GetString(8), System.Globalization.CultureInfo.InvariantCulture)));
        }

        return records;
    }
}
