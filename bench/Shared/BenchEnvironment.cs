using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace PersistentAgents.Bench;

/// <summary>What the benchmarks that start hosts as child processes need of their surroundings.</summary>
internal static class BenchEnvironment
{
    /// <summary>A loopback port free at the moment of asking.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The folder holding PersistentAgents.sln, found from the build output so a run works from any directory.</summary>
    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "PersistentAgents.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no PersistentAgents.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>The dotnet host that runs this program, so a child host runs on the same runtime.</summary>
    public static string DotnetExecutable()
    {
        var beside = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet"));
        return File.Exists(beside) ? beside : "dotnet";
    }

    /// <summary>The configuration this benchmark was built in, and so the one its host must be built in.</summary>
#if DEBUG
    public const string BuildConfiguration = "Debug";
#else
    public const string BuildConfiguration = "Release";
#endif

    /// <summary>The embedded host built in <see cref="BuildConfiguration"/> (a benchmark runs it as a child process).</summary>
    public static string BuiltHostDll(string root) =>
        Path.Combine(root, "services", "Host", "bin", BuildConfiguration, "net10.0", "PersistentAgents.Host.dll");

    /// <summary>
    /// Writes, into <paramref name="folder"/>, a catalog of one simulated model that answers at once and never
    /// fails, so that a benchmark of the host measures the host and not a provider's latency.
    /// </summary>
    /// <returns>The catalog's path.</returns>
    public static async Task<string> WriteInstantCatalogAsync(string folder)
    {
        var path = Path.Combine(folder, "catalog.yaml");
        await File.WriteAllTextAsync(path, """
            simulated: always
            providers:
              - name: sim-instant
                kind: simulated
                models:
                  - name: instant
                    inputPricePerMTok: 1
                    outputPricePerMTok: 2
                    quality: 0.9
                    simulation: { quality: 0.9, failureRate: 0, latencyMs: 0 }
            """);
        return path;
    }

    /// <summary>
    /// Puts a benchmark's report between <c>&lt;!-- {marker}:begin --&gt;</c> and <c>&lt;!-- {marker}:end --&gt;</c> in a
    /// document, or appends it under a new <paramref name="heading"/> when the markers are not there yet.
    /// </summary>
    public static void WriteMarkedSection(string path, string marker, string heading, string report)
    {
        var begin = $"<!-- {marker}:begin -->";
        var end = $"<!-- {marker}:end -->";
        var document = File.ReadAllText(path);
        var at = document.IndexOf(begin, StringComparison.Ordinal);
        var endAt = document.IndexOf(end, StringComparison.Ordinal);
        var block = $"{begin}\n{report}\n{end}";
        document = at >= 0 && endAt > at
            ? document[..at] + block + document[(endAt + end.Length)..]
            : document.TrimEnd() + $"\n\n## {heading}\n\n{block}\n";
        File.WriteAllText(path, document);
    }
}
