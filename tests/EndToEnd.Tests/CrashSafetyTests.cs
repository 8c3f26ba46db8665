using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Xunit.Abstractions;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// Kill -9 under load: the host runs as its own process so that SIGKILL ends it with requests in flight
/// and nothing flushed on the way out, then a new process on the same data folder must hold every
/// acknowledged interaction exactly once, with episodes, stats, semantic index and learning agreeing.
/// </summary>
public sealed class CrashSafetyTests(ITestOutputHelper output)
{
    private const int Clients = 8;
    private const int Agents = 40;
    private static readonly TimeSpan LoadDuration = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Every_acknowledged_interaction_survives_kill_9_under_load_exactly_once()
    {
        var dataDir = TestHost.NewDataDir();
        Directory.CreateDirectory(dataDir);
        var catalogPath = Path.Combine(dataDir, "test-catalog.yaml");
        await File.WriteAllTextAsync(catalogPath, TestCatalogs.Simulated());
        var agents = Enumerable.Range(0, Agents).Select(i => $"crash-{i:D2}").ToArray();
        // Prompt of every acknowledged interaction, by agent and interaction id.
        var acknowledged = agents.ToDictionary(a => a, _ => new ConcurrentDictionary<string, string>());
        try
        {
            int inFlightAtKill;
            using (var first = await HostProcess.StartAsync(dataDir, catalogPath))
            {
                var inFlight = 0;
                using var stopLoad = new CancellationTokenSource();
                var clients = Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
                {
                    for (var request = 0; !stopLoad.IsCancellationRequested; request++)
                    {
                        var agent = agents[(client + (request * Clients)) % Agents];
                        var prompt = $"Order {client}-{request} for {agent}: ship {request % 7} crates of part {client * 1000 + request}";
                        Interlocked.Increment(ref inFlight);
                        try
                        {
                            using var response = await first.Rest.PostAsJsonAsync($"/platform/agents/{agent}/complete", new { prompt, taskType = "orders", sessionId = $"client-{client}" });
                            if (response.StatusCode == HttpStatusCode.OK)
                            {
                                var id = (await TestHost.ReadObjectAsync(response))["interactionId"]!.GetValue<string>();
                                acknowledged[agent][id] = prompt;
                            }
                        }
                        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                        {
                            // The host was killed under this request: it was never acknowledged.
                            return;
                        }
                        finally
                        {
                            Interlocked.Decrement(ref inFlight);
                        }
                    }
                })).ToArray();

                await Task.Delay(LoadDuration);
                inFlightAtKill = Volatile.Read(ref inFlight);
                first.Kill();
                await stopLoad.CancelAsync();
                await Task.WhenAll(clients);
            }

            using var restarted = await HostProcess.StartAsync(dataDir, catalogPath);
            var figures = await VerifyAsync(restarted.Rest, acknowledged);
            output.WriteLine($"crash figures: acknowledged={figures.Acknowledged} found={figures.Found} lost={figures.Lost} duplicated={figures.Duplicated} " +
                $"landed-unacknowledged={figures.LandedUnacknowledged} in-flight-at-kill={inFlightAtKill} " +
                $"episodes-without-stats={figures.EpisodesWithoutStats} stats-episode-mismatches={figures.StatsEpisodeMismatches} recall-misses={figures.RecallMisses} learning-duplicates={figures.LearningDuplicates}");

            Assert.True(figures.Acknowledged > 0, "the load acknowledged nothing before the kill");
            Assert.Equal(0, figures.Lost);
            Assert.Equal(0, figures.Duplicated);
            Assert.Equal(0, figures.StatsEpisodeMismatches);
            // The restart removes the episode of a turn killed between its episode and its stats.
            Assert.Equal(0, figures.EpisodesWithoutStats);
            Assert.Equal(0, figures.RecallMisses);
            Assert.Equal(0, figures.LearningDuplicates);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task At_start_an_episode_no_stats_count_is_removed_and_an_agent_without_stats_keeps_its_episodes()
    {
        var dataDir = TestHost.NewDataDir();
        await using (var host = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated()))
        {
            for (var i = 0; i < 2; i++)
            {
                Assert.Equal(200, (await host.CompleteAsync("survivor", new { prompt = $"Route invoice {i}" })).Status);
            }
        }

        // What a kill between a turn's episode and its stats leaves: one more episode, stored later.
        var day = Directory.GetDirectories(Path.Combine(dataDir, "episodes", "default", "survivor")).Single();
        var leftover = Contracts.InteractionIds.New(DateTimeOffset.UtcNow.AddSeconds(1));
        File.Copy(Directory.GetFiles(day).First(), Path.Combine(day, leftover + ".json"));
        var restored = Path.Combine(dataDir, "episodes", "default", "restored", Path.GetFileName(day));
        Directory.CreateDirectory(restored);
        File.Copy(Directory.GetFiles(day).First(), Path.Combine(restored, Contracts.InteractionIds.New(DateTimeOffset.UtcNow) + ".json"));

        await using var restarted = await TestHost.StartAsync(dataDir, TestCatalogs.Simulated());
        Assert.Equal(2, restarted.Episodes("survivor").Count());
        Assert.False(File.Exists(Path.Combine(day, leftover + ".json")));
        Assert.Equal(2, WholeNumber((await restarted.GetAsync("/platform/agents/survivor/stats"))["totalInteractions"]));
        Assert.Single(restarted.Episodes("restored"));
    }

    private static async Task<CrashFigures> VerifyAsync(HttpClient rest, Dictionary<string, ConcurrentDictionary<string, string>> acknowledged)
    {
        var figures = new CrashFigures();
        foreach (var (agent, prompts) in acknowledged)
        {
            figures.Acknowledged += prompts.Count;

            var listed = (await GetObjectAsync(rest, $"/platform/agents/{agent}/memory/episodes?limit=1000"))["episodes"]!.AsArray()
                .Select(e => e!["interactionId"]!.GetValue<string>())
                .ToList();
            var episodeIds = listed.ToHashSet();
            figures.Duplicated += listed.Count - episodeIds.Count;
            figures.LandedUnacknowledged += episodeIds.Count(id => !prompts.ContainsKey(id));

            foreach (var id in prompts.Keys)
            {
                using var episode = await rest.GetAsync($"/platform/agents/{agent}/memory/episodes/{id}");
                if (episode.StatusCode == HttpStatusCode.OK && episodeIds.Contains(id))
                {
                    figures.Found++;
                }
                else
                {
                    figures.Lost++;
                }
            }

            // The loop writes the episode, then the stats, one turn of an agent at a time: a kill between
            // the two leaves the agent's last, unacknowledged, episode uncounted, until the restart removes it.
            var totalInteractions = WholeNumber((await GetObjectAsync(rest, $"/platform/agents/{agent}/stats"))["totalInteractions"]);
            var uncounted = episodeIds.Count - totalInteractions;
            if (uncounted is 0 or 1 && totalInteractions >= prompts.Count)
            {
                figures.EpisodesWithoutStats += (int)uncounted;
            }
            else
            {
                figures.StatsEpisodeMismatches++;
            }

            if (prompts.IsEmpty)
            {
                continue;
            }

            var (probeId, probePrompt) = prompts.First();
            using var recall = await rest.PostAsJsonAsync($"/platform/agents/{agent}/memory/recall", new { query = probePrompt, topK = 5 });
            var recalled = (await TestHost.ReadObjectAsync(recall))["memories"]?.AsArray() ?? [];
            if (!recalled.Any(m => m!["id"]!.GetValue<string>() == probeId))
            {
                figures.RecallMisses++;
            }

            var selections = (await GetObjectAsync(rest, $"/platform/agents/{agent}/learning/history?limit=5000"))["selections"]!.AsArray()
                .Select(s => s!["interactionId"]!.GetValue<string>())
                .Where(prompts.ContainsKey)
                .ToList();
            figures.LearningDuplicates += selections.Count - selections.Distinct().Count();
        }

        return figures;
    }

    private static async Task<JsonObject> GetObjectAsync(HttpClient rest, string path)
    {
        using var response = await rest.GetAsync(path);
        var body = await TestHost.ReadObjectAsync(response);
        Assert.True(response.IsSuccessStatusCode, $"GET {path} answered {(int)response.StatusCode}: {body}");
        return body;
    }

    private sealed class CrashFigures
    {
        public int Acknowledged { get; set; }

        public int Found { get; set; }

        public int Lost { get; set; }

        public int Duplicated { get; set; }

        public int LandedUnacknowledged { get; set; }

        public int EpisodesWithoutStats { get; set; }

        public int StatsEpisodeMismatches { get; set; }

        public int RecallMisses { get; set; }

        public int LearningDuplicates { get; set; }
    }

    /// <summary>The built host (PersistentAgents.Host.dll beside the tests) run by <c>dotnet</c> as a child process.</summary>
    private sealed class HostProcess : IDisposable
    {
        private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
        private readonly Process _process;

        private HostProcess(Process process, Uri rest)
        {
            _process = process;
            Rest = new HttpClient { BaseAddress = rest };
        }

        public HttpClient Rest { get; }

        public static async Task<HostProcess> StartAsync(string dataDir, string catalogPath)
        {
            var hostDll = Path.Combine(AppContext.BaseDirectory, "PersistentAgents.Host.dll");
            Assert.True(File.Exists(hostDll), $"{hostDll} is missing: build the tests first");
            var start = new ProcessStartInfo("dotnet")
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = dataDir,
            };
            var restUrl = $"http://127.0.0.1:{FreePort()}";
            foreach (var argument in new[]
            {
                hostDll,
                "--urls", restUrl,
                "--grpc-urls", $"http://127.0.0.1:{FreePort()}",
                "--data-dir", dataDir,
                "--catalog", catalogPath,
                "--Logging:LogLevel:Default", "Warning",
                "--Memory:Embeddings:Kind", "hashed",
            })
            {
                start.ArgumentList.Add(argument);
            }

            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the host process");
            // Drained so that a chatty host never blocks on a full pipe.
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            var host = new HostProcess(process, new Uri(restUrl));
            try
            {
                await host.WaitUntilAnsweringAsync();
                return host;
            }
            catch
            {
                host.Dispose();
                throw;
            }
        }

        /// <summary>SIGKILL on Linux: no shutdown hooks, no flushes, exactly as <c>kill -9</c>.</summary>
        public void Kill()
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        public void Dispose()
        {
            Rest.Dispose();
            if (!_process.HasExited)
            {
                Kill();
            }

            _process.Dispose();
        }

        private async Task WaitUntilAnsweringAsync()
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                Assert.False(_process.HasExited, "the host process exited before answering");
                try
                {
                    using var response = await Rest.GetAsync("/platform/agents/crash-probe/stats");
                    return;
                }
                catch (HttpRequestException) when (deadline.Elapsed < StartTimeout)
                {
                    await Task.Delay(100);
                }
            }
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }
}
