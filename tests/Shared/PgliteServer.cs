using System.Diagnostics;
using System.Text;

namespace PersistentAgents.Tests.Shared;

/// <summary>
/// A real PostgreSQL with pgvector, in memory: PGlite (Postgres compiled to WebAssembly, from npm) behind its
/// wire-protocol socket server, started with <c>node tests/Shared/pglite/server.mjs --port 0</c> on 127.0.0.1.
/// Installs the npm packages (<c>npm ci</c>) when <c>node_modules</c> is missing. Each server is a new, empty
/// database. Without Node.js it fails with a message saying so; tests marked <see cref="PgliteFactAttribute"/> or
/// <see cref="PgliteTheoryAttribute"/> are skipped instead, saying why.
/// </summary>
internal sealed class PgliteServer : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private static readonly string[] Tools = ["node", "npm"];
    private Process? _server;
    private readonly StringBuilder _output = new();

    /// <summary>
    /// Unpooled: every open is its own socket. PGlite has one backend; the socket server queues every socket's
    /// protocol messages onto it and keeps it to one socket while that socket's transaction is open, but outside
    /// a transaction two sockets' messages may interleave, so a user that works concurrently sets a pool of one.
    /// </summary>
    public string ConnectionString { get; private set; } = "";

    public static string Folder => Path.Combine(RepositoryRoot.Find(), "tests", "Shared", "pglite");

    /// <summary>Why a test that needs this server cannot run here, or null when node and npm are on PATH.</summary>
    public static string? SkipReason()
    {
        var directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        var missing = Tools.Where(tool => !directories.Any(directory => File.Exists(Path.Combine(directory, tool)))).ToList();
        return missing.Count == 0 ? null
            : $"{string.Join(" and ", missing)} not found on PATH: install Node.js 20 or later with npm (apt-get install -y nodejs npm, as .ci/run does) to run PostgreSQL (PGlite, from npm) for this test";
    }

    /// <summary>npm writes node_modules/.package-lock.json last, so an install cut short does not count as one.</summary>
    private static bool IsInstalled(string folder) =>
        File.Exists(Path.Combine(folder, "node_modules", ".package-lock.json"))
        && Directory.Exists(Path.Combine(folder, "node_modules", "@electric-sql", "pglite-socket"));

    /// <summary>An exclusive lock on a file beside the packages, held across processes until disposed.</summary>
    private static async Task<FileStream> TakeInstallLockAsync(string folder)
    {
        var path = Path.Combine(folder, ".install.lock");
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(5);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTimeOffset.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200));
            }
        }
    }

    public async Task InitializeAsync()
    {
        var folder = Folder;
        await RunAsync("node", "--version", folder, "Node.js (node, version 20 or later) is required to run PostgreSQL with pgvector (PGlite): install it, e.g. apt-get install -y nodejs npm");
        if (!IsInstalled(folder))
        {
            // Test projects run in parallel processes and share this folder: one installs while the others wait,
            // since `npm ci` deletes node_modules first and would pull it from under another process's server.
            using var installing = await TakeInstallLockAsync(folder);
            if (!IsInstalled(folder))
            {
                var lockFile = File.Exists(Path.Combine(folder, "package-lock.json"));
                await RunAsync("npm", lockFile ? "ci --no-audit --no-fund" : "install --no-audit --no-fund", folder,
                    $"npm could not install the PGlite packages in {folder}; run 'npm ci' there by hand to see why");
            }
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

        ConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Password=postgres;Database=postgres;SSL Mode=Disable;Pooling=false;Server Compatibility Mode=NoTypeLoading;Timeout=30;Command Timeout=60";
    }

    public async Task DisposeAsync()
    {
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

/// <summary>
/// A fact that needs a <see cref="PgliteServer"/>, so Node.js and npm. xunit 2 has no skip decided inside a test,
/// so the attribute skips it, saying why, on a machine without them.
/// </summary>
internal sealed class PgliteFactAttribute : FactAttribute
{
    public PgliteFactAttribute()
    {
        Skip = PgliteServer.SkipReason();
    }
}

/// <summary>A theory that needs a <see cref="PgliteServer"/>: skipped, saying why, as <see cref="PgliteFactAttribute"/> is.</summary>
internal sealed class PgliteTheoryAttribute : TheoryAttribute
{
    public PgliteTheoryAttribute()
    {
        Skip = PgliteServer.SkipReason();
    }
}
