// Sustained load on the embedded host: completes per second over 1,000 agents with zero-latency simulated
// providers, latency percentiles, the host's memory at the start and end of the measured window, once with
// providers that never fail and once with every provider failing 30% of calls. The host runs as its own
// process (Release) on loopback with a fresh data folder per run. Usage:
// dotnet run -c Release --project bench/Load [-- --help]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using PersistentAgents.Bench.Gateway;
using static PersistentAgents.Bench.BenchEnvironment;
using PersistentAgents.Bench.Load;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

if (args.Contains("--help"))
{
    Console.WriteLine("""
        dotnet run -c Release --project bench/Load [-- options]
          --clients N        closed-loop clients; without it, a short sweep picks the best of --sweep
          --sweep A,B,...    client counts the sweep tries (default 16,32,64), 3 s warm-up + 10 s each
          --warmup S         warm-up before each measured window (default 10)
          --seconds S        length of each measured window (default 60)
          --agents N         agents drawn uniformly, agent-0000 onwards (default 1000)
          --failure-rate R   the failure rate of every provider in the second run (default 0.3)
          --write            replace the load figures in docs/reliability.md (between its load markers)
          --keep             keep the work folder (host logs, catalogs, data)
        """);
    return 0;
}

var fixedClients = IntOption("--clients", 0);
var sweep = (Option("--sweep") ?? "16,32,64").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray();
var warmUp = TimeSpan.FromSeconds(IntOption("--warmup", 10));
var measured = TimeSpan.FromSeconds(IntOption("--seconds", 60));
var agentCount = IntOption("--agents", 1000);
var failureRate = double.Parse(Option("--failure-rate") ?? "0.3", CultureInfo.InvariantCulture);
var root = RepositoryRoot();
var hostDll = BuiltHostDll(root);
if (!File.Exists(hostDll))
{
    await Console.Error.WriteLineAsync($"{hostDll} is missing: run with -c {BuildConfiguration} (the project reference builds it)");
    return 2;
}

var dotnet = DotnetExecutable();
var work = Path.Combine(Path.GetTempPath(), "pa-bench-load", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(work);
var cpuModel = File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
    : "unknown CPU";
Progress($"{RuntimeInformation.FrameworkDescription}, {Environment.ProcessorCount} cores ({cpuModel}); work folder {work}");

var sweepResults = new List<WindowResult>();
int clients;
if (fixedClients > 0)
{
    clients = fixedClients;
}
else
{
    await using var host = await StartHostAsync("sweep", 0);
    using var load = new ClosedLoopLoad(host.BaseAddress, agentCount);
    foreach (var count in sweep)
    {
        var result = await load.RunAsync(count, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(10), () => { });
        Progress($"sweep: {count} clients, {result.CompletesPerSecond:0} completes/s, p99 {WindowResult.Percentile(result.SuccessLatenciesMs, 0.99):0.0} ms");
        sweepResults.Add(result);
    }

    clients = sweepResults.MaxBy(r => r.CompletesPerSecond)!.Clients;
}

var runs = new List<RunFigures>
{
    await MeasureAsync("A: providers never fail", 0, clients),
    await MeasureAsync($"B: every provider fails {failureRate * 100:0}% of calls", failureRate, clients),
};

var command = "dotnet run -c Release --project bench/Load" + (args.Length > 0 ? " -- " + string.Join(' ', args) : "");
var report = Report();
Console.WriteLine();
Console.WriteLine(report);
if (args.Contains("--write"))
{
    WriteMarkedSection(Path.Combine(root, "docs", "reliability.md"), "load", "Load", report);
    Progress("docs/reliability.md updated");
}

if (!args.Contains("--keep"))
{
    Directory.Delete(work, recursive: true);
}

return 0;

async Task<RunFigures> MeasureAsync(string name, double providerFailureRate, int clientCount)
{
    await using var host = await StartHostAsync(name[..1], providerFailureRate);
    using var load = new ClosedLoopLoad(host.BaseAddress, agentCount);
    var samples = new HostSamples(host.Process.Id);
    Task? sampling = null;
    Progress($"run {name}: {clientCount} clients, {warmUp.TotalSeconds:0} s warm-up, {measured.TotalSeconds:0} s measured");
    var window = await load.RunAsync(clientCount, warmUp, measured, () => sampling = samples.SampleAsync(host.Process, measured));
    await sampling!;
    var dataBytes = new DirectoryInfo(host.DataDir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
    var figures = new RunFigures(name, providerFailureRate, window, samples, dataBytes);
    Progress($"run {name}: {window.CompletesPerSecond:0} completes/s, success {window.SuccessRate:P1}, p99 {WindowResult.Percentile(window.SuccessLatenciesMs, 0.99):0.0} ms");
    return figures;
}

async Task<RunningHost> StartHostAsync(string label, double providerFailureRate)
{
    var dataDir = Path.Combine(work, $"data-{label}");
    Directory.CreateDirectory(dataDir);
    var catalog = Path.Combine(dataDir, "catalog.yaml");
    await File.WriteAllTextAsync(catalog, SimulatedCatalog.Yaml(providerFailureRate));
    var (port, grpcPort) = (FreePort(), FreePort());
    var process = ChildProcess.Start($"host {label}", dotnet,
    [
        hostDll,
        "--urls", $"http://127.0.0.1:{port}",
        "--grpc-urls", $"http://127.0.0.1:{grpcPort}",
        "--data-dir", dataDir,
        "--catalog", catalog,
        "--Logging:LogLevel:Default", "Warning",
    ], work, Path.Combine(work, $"host-{label}.log"));
    var baseAddress = new Uri($"http://127.0.0.1:{port}");
    using var probe = new ClosedLoopLoad(baseAddress, agentCount);
    try
    {
        await process.WaitReadyAsync(probe.AnswersAsync, TimeSpan.FromSeconds(60));
    }
    catch
    {
        await process.DisposeAsync();
        throw;
    }

    return new RunningHost(process, baseAddress, dataDir);
}

string Report()
{
    var text = new StringBuilder();
    var started = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
    text.AppendLine(CultureInfo.InvariantCulture, $"Measured {started} on {Environment.ProcessorCount} cores, {cpuModel} (`/proc/cpuinfo` model name), {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}; data folder under `{Path.GetTempPath().TrimEnd('/')}`.");
    text.AppendLine(CultureInfo.InvariantCulture, $"Command: `{command}`.");
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture, $"""
        The embedded host (Release) runs as its own process on loopback, with a fresh data folder per run and three
        simulated providers at `latencyMs: 0`. {clients} closed-loop clients (each sends the next request when the last
        is answered) post `POST /platform/agents/{"{agent}"}/complete` for an agent drawn uniformly from
        agent-0000..agent-{agentCount - 1:D4}, with one of three task types; {warmUp.TotalSeconds:0} s of warm-up, then
        {measured.TotalSeconds:0} s measured (only requests sent and answered inside the window count). The clients run on
        the same {Environment.ProcessorCount} cores as the host.
        """);
    if (sweepResults.Count > 0)
    {
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Client count, from a sweep on one host with providers that never fail (3 s warm-up, 10 s measured each); the best completes/s was used:");
        text.AppendLine();
        text.AppendLine("| Clients | Completes/s | p50 ms | p99 ms |");
        text.AppendLine("|--------:|------------:|-------:|-------:|");
        foreach (var r in sweepResults)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Clients} | {r.CompletesPerSecond:0} | {WindowResult.Percentile(r.SuccessLatenciesMs, 0.5):0.0} | {WindowResult.Percentile(r.SuccessLatenciesMs, 0.99):0.0} |");
        }
    }

    text.AppendLine();
    text.AppendLine("| | " + string.Join(" | ", runs.Select(r => r.Name)) + " |");
    text.AppendLine("|---|" + string.Concat(runs.Select(_ => "---:|")));
    void Row(string label, Func<RunFigures, string> value) => text.AppendLine($"| {label} | " + string.Join(" | ", runs.Select(value)) + " |");
    Row("requests answered in the window", r => $"{r.Window.Requests:N0}");
    Row("outcomes", r => string.Join(", ", r.Window.Outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}: {o.Value:N0}")));
    Row("success rate (HTTP 200)", r => $"{r.Window.SuccessRate:P2}");
    Row("completes/s (HTTP 200)", r => $"{r.Window.CompletesPerSecond:0}");
    Row("requests/s (all answers)", r => $"{r.Window.RequestsPerSecond:0}");
    foreach (var (label, p) in new[] { ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0) })
    {
        Row($"{label} latency of a complete (200), ms", r => $"{WindowResult.Percentile(r.Window.SuccessLatenciesMs, p):0.0}");
    }

    Row("p50 / p99 latency of a failed request, ms", r => r.Window.FailureLatenciesMs.Length == 0
        ? "-"
        : $"{WindowResult.Percentile(r.Window.FailureLatenciesMs, 0.5):0.0} / {WindowResult.Percentile(r.Window.FailureLatenciesMs, 0.99):0.0}");
    Row("host RSS at window start / end / peak, MiB", r => $"{r.Samples.RssStartKiB / 1024.0:0} / {r.Samples.RssEndKiB / 1024.0:0} / {r.Samples.RssPeakKiB / 1024.0:0}");
    Row("data folder at the end, MiB", r => $"{r.DataBytes / 1048576.0:0.0}");
    Row("host CPU, cores busy", r => $"{r.Samples.HostCpuSeconds / measured.TotalSeconds:0.00}");
    Row("load generator CPU, cores busy", r => $"{r.Samples.ClientCpuSeconds / measured.TotalSeconds:0.00}");
    Row("machine idle / iowait", r => $"{r.Samples.IdleShare:P1} / {r.Samples.IowaitShare:P1}");
    return text.ToString().TrimEnd();
}

int IntOption(string name, int fallback) => Option(name) is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");

/// <summary>A host process this benchmark started, where it answers, and its data folder.</summary>
internal sealed record RunningHost(ChildProcess Process, Uri BaseAddress, string DataDir) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Process.DisposeAsync();
}

/// <summary>One run's figures: the measured window, the host samples over it and the data folder's size at the end.</summary>
internal sealed record RunFigures(string Name, double ProviderFailureRate, WindowResult Window, HostSamples Samples, long DataBytes);
