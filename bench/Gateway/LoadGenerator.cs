using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace PersistentAgents.Bench.Gateway;

/// <summary>Where the load goes: a URL and the headers that make the same chat completion reach the fake upstream.</summary>
public sealed class Target(string name, Uri url, IReadOnlyList<(string Name, string Value)> headers)
{
    /// <summary>The same body for every target: the bare model name resolves to the only catalog arm in our gateway.</summary>
    public static readonly byte[] Body = Encoding.UTF8.GetBytes(
        """{"model":"bench-model","messages":[{"role":"system","content":"You route customer e-mail to the right team."},{"role":"user","content":"A customer disputes invoice 4471 and wants a call back before Friday."}]}""");

    public string Name { get; } = name;

    public Uri Url { get; } = url;

    public HttpRequestMessage CreateRequest()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Url) { Version = HttpVersion.Version11, Content = new ByteArrayContent(Body) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        foreach (var (header, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }

        return request;
    }
}

/// <summary>One measured run: per-request latency of the successful requests, errors by kind, achieved rate.</summary>
public sealed record RunResult(
    string Target,
    string Load,
    int OfferedRps,
    int Sent,
    double[] LatenciesMs,
    IReadOnlyDictionary<string, int> Errors,
    double AchievedRps,
    double GeneratorLagP99Ms,
    double ServerCpuUsPerRequest)
{
    public int ErrorCount => Errors.Values.Sum();

    public double P50 => Percentile(0.50);

    public double P99 => Percentile(0.99);

    /// <summary>Nearest-rank percentile of the successful requests' latency (sorted on creation).</summary>
    public double Percentile(double p) => LatenciesMs.Length == 0
        ? double.NaN
        : LatenciesMs[Math.Clamp((int)Math.Ceiling(p * LatenciesMs.Length) - 1, 0, LatenciesMs.Length - 1)];
}

/// <summary>
/// Sequential and open-loop load over HTTP/1.1 keep-alive connections. Open loop: a fixed schedule of send
/// times (request i at start + i / rate), each request's latency counted from its scheduled time, so a
/// server that falls behind is charged for the queue it builds (no coordinated omission).
/// </summary>
public sealed class LoadGenerator : IDisposable
{
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    private readonly HttpClient _client;

    /// <summary>The start of the first answer body seen for each kind of HTTP error, to say what the errors were.</summary>
    public ConcurrentDictionary<string, string> ErrorSamples { get; } = new(StringComparer.Ordinal);

    public LoadGenerator()
    {
        _client = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 2048,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            Timeout = RequestTimeout,
        };
    }

    public void Dispose() => _client.Dispose();

    /// <summary>One request, for readiness checks: the status and the body.</summary>
    public async Task<(HttpStatusCode Status, string Body, string Headers)> ProbeAsync(Target target)
    {
        using var request = target.CreateRequest();
        using var response = await _client.SendAsync(request);
        var headers = string.Join("; ", response.Headers.Select(h => $"{h.Key}: {string.Join(",", h.Value)}"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), headers);
    }

    public async Task<RunResult> SequentialAsync(Target target, int count, Func<TimeSpan>? serverCpu)
    {
        var latencies = new List<double>(count);
        var errors = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var cpuBefore = serverCpu?.Invoke() ?? TimeSpan.Zero;
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var sent = Stopwatch.GetTimestamp();
            var error = await SendAsync(target);
            if (error is null)
            {
                latencies.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
            }
            else
            {
                errors.AddOrUpdate(error, 1, (_, n) => n + 1);
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = (serverCpu?.Invoke() ?? TimeSpan.Zero) - cpuBefore;
        latencies.Sort();
        return new RunResult(target.Name, "sequential", 0, count, [.. latencies], errors, latencies.Count / elapsed, 0,
            cpu.TotalMicroseconds / count);
    }

    public async Task<RunResult> OpenLoopAsync(Target target, int rate, TimeSpan duration, Func<TimeSpan>? serverCpu)
    {
        var count = (int)(rate * duration.TotalSeconds);
        var latencies = new double[count];
        var lags = new double[count];
        var tasks = new Task[count];
        var errors = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        long lastCompletion = 0;
        var ticksPerRequest = (double)Stopwatch.Frequency / rate;
        var cpuBefore = serverCpu?.Invoke() ?? TimeSpan.Zero;
        var start = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 50); // 20 ms from now

        async Task SendScheduledAsync(int i, long due)
        {
            var error = await SendAsync(target);
            var now = Stopwatch.GetTimestamp();
            latencies[i] = error is null ? (now - due) * 1000.0 / Stopwatch.Frequency : double.NaN;
            if (error is not null)
            {
                errors.AddOrUpdate(error, 1, (_, n) => n + 1);
            }

            long seen;
            while ((seen = Interlocked.Read(ref lastCompletion)) < now && Interlocked.CompareExchange(ref lastCompletion, now, seen) != seen)
            {
            }
        }

        // The dispatcher: a dedicated thread that sleeps until each send time and starts the request.
        var dispatcher = new Thread(() =>
        {
            for (var i = 0; i < count; i++)
            {
                var due = start + (long)(i * ticksPerRequest);
                Sleeper.SleepUntil(due);
                lags[i] = (Stopwatch.GetTimestamp() - due) * 1000.0 / Stopwatch.Frequency;
                tasks[i] = SendScheduledAsync(i, due);
            }
        })
        { IsBackground = true, Name = "load dispatcher", Priority = ThreadPriority.AboveNormal };
        dispatcher.Start();
        await Task.Run(dispatcher.Join);

        // Every request times out after RequestTimeout, so this wait is bounded.
        await Task.WhenAll(tasks).WaitAsync(RequestTimeout + TimeSpan.FromSeconds(5));
        var cpu = (serverCpu?.Invoke() ?? TimeSpan.Zero) - cpuBefore;

        var ok = latencies.Where(l => !double.IsNaN(l)).ToArray();
        Array.Sort(ok);
        Array.Sort(lags);
        var window = (lastCompletion - start) / (double)Stopwatch.Frequency;
        return new RunResult(target.Name, $"{rate} rps", rate, count, ok, errors, ok.Length / window,
            lags[Math.Clamp((int)Math.Ceiling(0.99 * count) - 1, 0, count - 1)], cpu.TotalMicroseconds / count);
    }

    /// <returns>null on a 200 with a body, else what went wrong.</returns>
    private async Task<string?> SendAsync(Target target)
    {
        try
        {
            using var request = target.CreateRequest();
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var error = $"{target.Name}: HTTP {(int)response.StatusCode}";
                if (!ErrorSamples.ContainsKey(error))
                {
                    var body = await response.Content.ReadAsStringAsync();
                    ErrorSamples.TryAdd(error, body.Length > 300 ? body[..300] : body);
                }

                return $"HTTP {(int)response.StatusCode}";
            }

            return response.Content.Headers.ContentLength is > 0 ? null : "empty body";
        }
        catch (TaskCanceledException)
        {
            return "timeout";
        }
        catch (HttpRequestException e)
        {
            return $"{e.HttpRequestError}";
        }
    }
}

/// <summary>Sleeps until a Stopwatch timestamp with clock_nanosleep (Linux), to about 60 µs, without spinning a core.</summary>
internal static partial class Sleeper
{
    private const int ClockMonotonic = 1;

    public static void SleepUntil(long due)
    {
        while (true)
        {
            var remaining = due - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                return;
            }

            var nanoseconds = (long)(remaining * (1_000_000_000.0 / Stopwatch.Frequency));
            if (OperatingSystem.IsLinux())
            {
                var request = new Timespec { Seconds = nanoseconds / 1_000_000_000, Nanoseconds = nanoseconds % 1_000_000_000 };
                _ = ClockNanosleep(ClockMonotonic, 0, in request, IntPtr.Zero);
            }
            else
            {
                Thread.Sleep(TimeSpan.FromTicks(Math.Max(1, nanoseconds / 100)));
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int ClockNanosleep(int clockId, int flags, in Timespec request, IntPtr remain);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
