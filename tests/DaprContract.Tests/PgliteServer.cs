using System.Diagnostics;
using System.Text;
using Npgsql;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// A real PostgreSQL with pgvector for the run: PGlite (Postgres compiled to WebAssembly, from npm) behind its
/// wire-protocol socket server, started with <c>node pglite/server.mjs --port 0</c> on 127.0.0.1. Installs the
/// npm packages (<c>npm ci</c>) when <c>node_modules</c> is missing. Without Node.js it fails with a message
/// saying so: nothing is skipped.
/// </summary>
public sealed class PgliteServer : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private Process? _server;
    private readonly StringBuilder _output = new();

    public PostgresBinding Binding { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    public static string Folder => Path.Combine(RepositoryRoot.Find(), "tests", "DaprContract.Tests", "pglite");

    public async Task InitializeAsync()
    {
        var folder = Folder;
        await RunAsync("node", "--version", folder, "Node.js (node, version 20 or later) is required to run PostgreSQL with pgvector (PGlite) for the Dapr contract tests: install it, e.g. apt-get install -y nodejs npm");
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "@electric-sql", "pglite-socket")))
        {
            var lockFile = File.Exists(Path.Combine(folder, "package-lock.json"));
            await RunAsync("npm", lockFile ? "ci --no-audit --no-fund" : "install --no-audit --no-fund", folder,
                $"npm could not install the PGlite packages in {folder}; run 'npm ci' there by hand to see why");
        }

        var start = new ProcessStartInfo("node", "server.mjs --port 0")
        {
            WorkingDirectory = folder,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _server = Process.Start(start) ?? throw new InvalidOperationException("could not start node server.mjs");
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException($"the PGlite server exited before it was ready:\n{Output()}"));
                return;
            }

            lock (_output)
            {
                _output.AppendLine(e.Data);
            }

            if (e.Data.StartsWith("READY ", StringComparison.Ordinal))
            {
                ready.TrySetResult(e.Data["READY ".Length..].Trim());
            }
        };
        _server.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(e.Data);
                }
            }
        };
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();

        string address;
        try
        {
            address = await ready.Task.WaitAsync(StartTimeout);
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException($"the PGlite server did not say READY within {StartTimeout.TotalSeconds} s:\n{Output()}");
        }

        var port = address[(address.LastIndexOf(':') + 1)..];

        // One session for the whole run: PGlite is a single-session database behind the socket server.
        ConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Password=postgres;Database=postgres;SSL Mode=Disable;Pooling=false;Server Compatibility Mode=NoTypeLoading;Timeout=30;Command Timeout=60";
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        Binding = new PostgresBinding(connection);
    }

    public async Task DisposeAsync()
    {
        if (Binding is not null)
        {
            await Binding.DisposeAsync();
        }

        if (_server is { HasExited: false })
        {
            // Closing its standard input stops the server; kill it if it does not go.
            _server.StandardInput.Close();
            using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _server.WaitForExitAsync(exited.Token);
            }
            catch (OperationCanceledException)
            {
                _server.Kill(entireProcessTree: true);
            }
        }

        _server?.Dispose();
    }

    private string Output()
    {
        lock (_output)
        {
            return _output.ToString();
        }
    }

    private static async Task RunAsync(string file, string arguments, string folder, string failure)
    {
        var info = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException(failure);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{failure} ('{file}' could not be started: {e.Message})", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{failure}\n'{file} {arguments}' exited with {process.ExitCode}:\n{await stdout}\n{await stderr}");
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PgliteTests : ICollectionFixture<PgliteServer>
{
    public const string Name = "PostgreSQL with pgvector (PGlite)";
}
