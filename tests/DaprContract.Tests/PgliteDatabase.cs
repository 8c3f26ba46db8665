using Npgsql;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// PostgreSQL with pgvector for the run, as the sidecar double's <c>bindings.postgresql</c> serves it: a
/// <see cref="PgliteServer"/> and one connection to it behind the <see cref="PostgresBinding"/>.
/// </summary>
public sealed class PgliteDatabase : IAsyncLifetime
{
    private readonly PgliteServer _server = new();

    public PostgresBinding Binding { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await _server.InitializeAsync();
        // One session for the whole run: the binding runs one statement at a time on it, as PGlite runs them.
        var connection = new NpgsqlConnection(_server.ConnectionString);
        await connection.OpenAsync();
        Binding = new PostgresBinding(connection);
    }

    public async Task DisposeAsync()
    {
        if (Binding is not null)
        {
            await Binding.DisposeAsync();
        }

        await _server.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class PgliteTests : ICollectionFixture<PgliteDatabase>
{
    public const string Name = "PostgreSQL with pgvector (PGlite)";
}
