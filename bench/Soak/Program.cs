// A soak of the embedded host: closed-loop completes for --minutes (10) over a window of agents that slides
// across --agents (20,000) names, so that every agent is busy for a while and then idle for good, and the
// host must let idle agents go for its memory to stay flat. Every --sample-seconds (30) the load pauses and
// the process's RSS, the managed heap after a full collection, the resident vector-index partitions and
// learning agents, and completes/s are recorded; growth is the last third's mean over the first third's
// (samples of the first minute left out as warm-up). The host runs in this process (Release) on loopback with
// a fresh data folder. Usage: dotnet run -c Release --project bench/Soak [-- --help]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Bench.Load;
using PersistentAgents.Contracts;
using PersistentAgents.Host;
using PersistentAgents.Learning;
using PersistentAgents.Memory.Embedded;
using static PersistentAgents.Bench.BenchEnvironment;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

if (args.Contains("--help"))
{
    Console.WriteLine("""
        dotnet run -c Release --project bench/Soak [-- options]
          --minutes M         length of the soak (default 10)
          --agents N          agent names the window slides across, agent-00000 onwards (default 20000)
          --active N          agents in the window at any time (default 500)
          --clients N         closed-loop clients (default 16)
          --sample-seconds S  load between two samples (default 30)
          --write             replace the soak figures in docs/reliability.md (between its soak markers)
          --keep              keep the data folder
        """);
    return 0;
}

var duration = TimeSpan.FromMinutes(double.Parse(Option("--minutes") ?? "10", CultureInfo.InvariantCulture));
var agentCount = IntOption("--agents", 20_000);
var active = Math.Min(IntOption("--active", 500), agentCount);
var clients = IntOption("--clients", 16);
var sampleEvery = TimeSpan.FromSeconds(IntOption("--sample-seconds", 30));
// The first minute (a fifth of a shorter run) is warm-up: caches filling, code being compiled.
var warmUp = TimeSpan.FromMinutes(Math.Min(1, duration.TotalMinutes / 5));
const double FlatBelow = 0.10;

var root = RepositoryRoot();
var dataDir = Path.Combine(Path.GetTempPath(), "pa-bench-soak", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(dataDir);
var catalog = Path.Combine(dataDir, "catalog.yaml");
await File.WriteAllTextAsync(catalog, SimulatedCatalog.Yaml(providerFailureRate: 0));
var cpuModel = File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
    : "unknown CPU";
Progress($"{RuntimeInformation.FrameworkDescription}, {Environment.ProcessorCount} cores ({cpuModel}), server GC {System.Runtime.GCSettings.IsServerGC}; data folder {dataDir}");

var app = EmbeddedHost.Build(
    ["--urls", $"http://127.0.0.1:{FreePort()}", "--grpc-urls", $"http://127.0.0.1:{FreePort()}", "--data-dir", dataDir, "--catalog", catalog, "--Logging:LogLevel:Default", "Warning"]);
await app.StartAsync();
var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
var vectorIndex = app.Services.GetRequiredService<InProcessVectorIndex>();
var learning = (LearningService)app.Services.GetRequiredService<ILearningApi>();

// The window of active agents slides from the first names to the last over the soak.
var clock = Stopwatch.StartNew();
int WindowStart() => (int)(Math.Min(1, clock.Elapsed / duration) * (agentCount - active));
string AgentOf(Random random) => $"agent-{WindowStart() + random.Next(active):D5}";

using var load = new ClosedLoopLoad(address, agentCount, AgentOf);
var samples = new List<Sample>();
var started = DateTime.UtcNow;
for (var window = 0; clock.Elapsed < duration; window++)
{
    var result = await load.RunAsync(clients, TimeSpan.Zero, sampleEvery, () => { }, seed: window + 1);
    var heap = GC.GetTotalMemory(forceFullCollection: true);
    var sample = new Sample(clock.Elapsed, RssKiB(), heap, vectorIndex.ResidentPartitions, learning.ResidentAgents, result.CompletesPerSecond,
        WindowResult.Percentile(result.SuccessLatenciesMs, 0.99), result.Requests - result.Successes, $"agent-{WindowStart():D5}");
    samples.Add(sample);
    Progress($"{sample.At.TotalSeconds,5:0} s: RSS {sample.RssKiB / 1024.0:0} MiB, heap {sample.HeapBytes / 1048576.0:0.0} MiB, partitions {sample.Partitions}, learning agents {sample.LearningAgents}, {sample.CompletesPerSecond:0} completes/s, p99 {sample.P99Ms:0.0} ms, failed {sample.Failed}");
}

await app.StopAsync();
await app.DisposeAsync();

var command = "dotnet run -c Release --project bench/Soak" + (args.Length > 0 ? " -- " + string.Join(' ', args) : "");
var report = Report();
Console.WriteLine();
Console.WriteLine(report);
if (args.Contains("--write"))
{
    WriteMarkedSection(Path.Combine(root, "docs", "reliability.md"), "soak", "Soak", report);
    Progress("docs/reliability.md updated");
}

if (!args.Contains("--keep"))
{
    Directory.Delete(dataDir, recursive: true);
}

return 0;

string Report()
{
    var measured = samples.Where(s => s.At >= warmUp).ToList();
    var third = Math.Max(1, measured.Count / 3);
    var (first, last) = (measured.Take(third).ToList(), measured.TakeLast(third).ToList());
    double Growth(Func<Sample, double> value) => (last.Average(value) / first.Average(value)) - 1;
    var text = new StringBuilder();
    text.AppendLine(CultureInfo.InvariantCulture, $"Measured {started:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores, {cpuModel} (`/proc/cpuinfo` model name), {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, server GC; data folder under `{Path.GetTempPath().TrimEnd('/')}`.");
    text.AppendLine(CultureInfo.InvariantCulture, $"Command: `{command}`.");
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture, $"""
        The embedded host (Release, default settings) runs in the benchmark's process on loopback, with a fresh data
        folder and three simulated providers at `latencyMs: 0`. {clients} closed-loop clients post
        `POST /platform/agents/{"{agent}"}/complete` for {duration.TotalMinutes:0.#} minutes, each agent drawn from a window of
        {active:N0} that slides from agent-00000 to agent-{agentCount - 1:D5} over the run ({agentCount:N0} agents, each busy
        for a while and then idle for good), one session per client and agent, three task types. Every
        {sampleEvery.TotalSeconds:0} s the clients stop and the process is sampled: RSS (`VmRSS`), the managed heap after a full
        blocking collection (`GC.GetTotalMemory(true)`), partitions resident in the vector index, agents whose arms the
        learning service holds. Growth is the mean of the last third of the samples over the first third's, samples of
        the first {warmUp.TotalSeconds:0} s left out; flat means under {FlatBelow:P0}. The clients share the process and the
        {Environment.ProcessorCount} cores.
        """);
    text.AppendLine();
    text.AppendLine("| at (s) | RSS (MiB) | managed heap (MiB) | resident partitions | learning agents | completes/s | p99 (ms) | failed | window starts at |");
    text.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    foreach (var s in samples)
    {
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {s.At.TotalSeconds:0}{(s.At < warmUp ? " (warm-up)" : "")} | {s.RssKiB / 1024.0:0} | {s.HeapBytes / 1048576.0:0.0} | {s.Partitions:N0} | {s.LearningAgents:N0} | {s.CompletesPerSecond:0} | {s.P99Ms:0.0} | {s.Failed} | {s.WindowStart} |");
    }

    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture, $"Over {measured.Count} samples after warm-up ({third} per third), {samples.Sum(s => s.CompletesPerSecond * sampleEvery.TotalSeconds):N0} completes in all:");
    text.AppendLine();
    text.AppendLine("| | first third | last third | growth | flat (< 10 %) |");
    text.AppendLine("|---|---:|---:|---:|---|");
    void Row(string label, Func<Sample, double> value, string format)
    {
        var growth = Growth(value);
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {label} | {first.Average(value).ToString(format, CultureInfo.InvariantCulture)} | {last.Average(value).ToString(format, CultureInfo.InvariantCulture)} | {growth:+0.0 %;-0.0 %} | {(Math.Abs(growth) < FlatBelow ? "yes" : "**no**")} |");
    }

    Row("RSS (MiB)", s => s.RssKiB / 1024.0, "0");
    Row("managed heap after full GC (MiB)", s => s.HeapBytes / 1048576.0, "0.0");
    Row("resident partitions", s => s.Partitions, "0");
    Row("learning agents in memory", s => s.LearningAgents, "0");
    Row("completes/s", s => s.CompletesPerSecond, "0");
    return text.ToString().TrimEnd();
}

static long RssKiB()
{
    var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}

int IntOption(string name, int fallback) => Option(name) is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");

/// <summary>One sample, taken with the load paused after a window of completes.</summary>
/// <param name="WindowStart">The first agent of the active window when the sample was taken.</param>
internal sealed record Sample(TimeSpan At, long RssKiB, long HeapBytes, int Partitions, int LearningAgents, double CompletesPerSecond, double P99Ms, int Failed, string WindowStart);
