using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// A real PostgreSQL server for the run: Debian's <c>initdb</c> and <c>pg_ctl</c> on a temporary data folder,
/// listening on 127.0.0.1 at a free port with trust authentication. PostgreSQL refuses to run as root, so
/// as root the server and its tools run as the <c>postgres</c> user, which owns the folder. Without the
/// server programs it fails with a message saying so: nothing is skipped.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string ServerUser = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pa-postgres-" + Guid.NewGuid().ToString("N")[..12]);
    private string _binaries = "";
    private bool _started;
    private int _port;

    /// <summary>The maintenance database, for creating the databases tests write to.</summary>
    public string ConnectionString { get; private set; } = "";

    private string DataFolder => Path.Combine(_folder, "data");

    public async Task InitializeAsync()
    {
        _binaries = FindServerBinaries() ?? throw new InvalidOperationException(
            "PostgreSQL's server programs (initdb, pg_ctl) are neither on PATH nor in /usr/lib/postgresql/*/bin. " +
            "The analytics tests start Debian's PostgreSQL themselves; .ci/run installs it (apt-get install -y postgresql).");
        try
        {
            Directory.CreateDirectory(_folder);
            if (Environment.IsPrivilegedProcess)
            {
                await RunAsync("chown", [$"{ServerUser}:{ServerUser}", _folder]);
            }

            await RunAsServerUserAsync("initdb", ["-D", DataFolder, "-U", ServerUser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]);
            _port = FreePort();
            // fsync off: the data is thrown away after the run, so durability only costs time.
            var serverOptions = $"-c listen_addresses=127.0.0.1 -p {_port} -k {_folder} -c fsync=off";
            await RunAsServerUserAsync("pg_ctl", ["-D", DataFolder, "-l", Path.Combine(_folder, "server.log"), "-o", serverOptions, "-w", "-t", "60", "start"]);
            _started = true;
            ConnectionString = ConnectionStringFor("postgres");
            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>A new, empty database, so that each test sees only its own rows.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionStringFor(name);
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_started)
        {
            await RunAsServerUserAsync("pg_ctl", ["-D", DataFolder, "-m", "fast", "-w", "stop"]);
            _started = false;
        }

        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private string ConnectionStringFor(string database) =>
        $"Host=127.0.0.1;Port={_port.ToString(CultureInfo.InvariantCulture)};Username={ServerUser};Database={database};SSL Mode=Disable;Timeout=15;Command Timeout=30";

    /// <summary>The folder holding initdb and pg_ctl, symbolic links followed so that pg_ctl finds postgres beside it.</summary>
    private static string? FindServerBinaries()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, "initdb"))
            .FirstOrDefault(File.Exists);
        var initdb = onPath ?? (Directory.Exists("/usr/lib/postgresql")
            ? Directory.EnumerateDirectories("/usr/lib/postgresql")
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out var version) ? version : 0)
                .Select(d => Path.Combine(d, "bin", "initdb"))
                .FirstOrDefault(File.Exists)
            : null);
        return initdb is null ? null : Path.GetDirectoryName(File.ResolveLinkTarget(initdb, returnFinalTarget: true)?.FullName ?? initdb);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Task RunAsServerUserAsync(string program, IEnumerable<string> arguments)
    {
        var executable = Path.Combine(_binaries, program);
        return Environment.IsPrivilegedProcess
            ? RunAsync("runuser", ["-u", ServerUser, "--", executable, .. arguments])
            : RunAsync(executable, arguments);
    }

    private async Task RunAsync(string file, IEnumerable<string> arguments)
    {
        // The server user may not be allowed into the test's own folder, and initdb wants a readable one.
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = _folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var commandLine = $"{file} {string.Join(' ', info.ArgumentList)}";
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {commandLine}");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"'{commandLine}' did not finish within {CommandTimeout.TotalSeconds} s{ServerLog()}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{commandLine}' exited with {process.ExitCode}:\n{await output}\n{await errors}{ServerLog()}");
        }
    }

    private string ServerLog()
    {
        var log = Path.Combine(_folder, "server.log");
        return File.Exists(log) ? $"\nserver log:\n{File.ReadAllText(log)}" : "";
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresTests : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL (Debian's server)";
}
