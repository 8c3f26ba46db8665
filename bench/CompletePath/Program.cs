// Where the time of one `complete` goes: the embedded host on loopback with zero-latency simulated
// providers, every memory call timed by a decorator, and the share of the whole REST round trip that
// memory takes reported per operation. Usage: dotnet run -c Release --project bench/CompletePath [-- --count N]
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Bench;
using PersistentAgents.Bench.CompletePath;
using PersistentAgents.Contracts;
using PersistentAgents.Host;
using PersistentAgents.Memory;

var count = args.SkipWhile(a => a != "--count").Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(2_000);
var dataDir = Path.Combine(Path.GetTempPath(), "pa-bench-complete", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(dataDir);
var catalog = await BenchEnvironment.WriteInstantCatalogAsync(dataDir);

var timings = new MemoryTimings();
var app = EmbeddedHost.Build(
    ["--urls", "http://127.0.0.1:0", "--grpc-urls", "http://127.0.0.1:0", "--data-dir", dataDir, "--catalog", catalog, "--Logging:LogLevel:Default", "Warning"],
    services => services.AddSingleton<IMemoryApi>(sp => new TimedMemoryApi(sp.GetRequiredService<MemoryService>(), timings)));
await app.StartAsync();
var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
using var client = new HttpClient { BaseAddress = new Uri(address) };

string[] topics = ["invoice", "contract", "refund", "shipment", "password", "holiday", "pricing", "outage"];
async Task CompleteAsync(int i)
{
    using var response = await client.PostAsJsonAsync("/platform/agents/bench-agent/complete", new
    {
        prompt = $"Request {i} about the {topics[i % topics.Length]} of customer {i % 97}: please route and summarise it",
        taskType = "routing",
        sessionId = $"s{i % 10}",
    });
    response.EnsureSuccessStatusCode();
}

for (var i = 0; i < 100; i++)
{
    await CompleteAsync(i);
}

timings.Reset();
var total = Stopwatch.StartNew();
for (var i = 100; i < 100 + count; i++)
{
    await CompleteAsync(i);
}

total.Stop();
var totalMs = total.Elapsed.TotalMilliseconds;
Console.WriteLine($"complete path, {count} sequential REST completes after 100 warm-up, one agent, zero-latency simulated provider");
Console.WriteLine($"mean complete round trip: {totalMs / count:0.000} ms");
Console.WriteLine($"{"memory operation",-22} {"calls",7} {"mean ms",9} {"share of complete",18}");
foreach (var (operation, (calls, ms)) in timings.Snapshot().OrderByDescending(t => t.Value.Ms))
{
    Console.WriteLine($"{operation,-22} {calls,7} {ms / calls,9:0.000} {ms / totalMs,17:P1}");
}

var memoryMs = timings.Snapshot().Sum(t => t.Value.Ms);
Console.WriteLine($"{"all memory",-22} {"",7} {memoryMs / count,9:0.000} {memoryMs / totalMs,17:P1}");
await app.StopAsync();
Directory.Delete(dataDir, recursive: true);
