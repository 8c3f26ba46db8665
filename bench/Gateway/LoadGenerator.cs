using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace PersistentAgents.Bench.Gateway;

/// <summary>
/// Where the load goes: a URL and the headers that make the same chat completion reach the fake upstream, asked
/// for a whole reply or for a stream (<c>"stream": true</c> with <c>stream_options.include_usage</c>).
/// </summary>
public sealed class Target(string name, Uri url, IReadOnlyList<(string Name, string Value)> headers, bool streamed = false)
{
    /// <summary>The request up to its closing brace.</summary>
    private const string Unclosed =
        """{"model":"bench-model","messages":[{"role":"system","content":"You route customer e-mail to the right team."},{"role":"user","content":"A customer disputes invoice 4471 and wants a call back before Friday."}]""";

    /// <summary>The same body for every target: the bare model name resolves to the only catalog arm in our gateway.</summary>
    public static readonly byte[] Body = Encoding.UTF8.GetBytes(Unclosed + "}");

    /// <summary><see cref="Body"/> asking for a stream that ends with a usage chunk.</summary>
    public static readonly byte[] StreamedBody = Encoding.UTF8.GetBytes(Unclosed + ""","stream":true,"stream_options":{"include_usage":true}}""");

    public string Name { get; } = name;

    public Uri Url { get; } = url;

    public bool Streamed { get; } = streamed;

    /// <summary>The same target, asked for streams.</summary>
    public Target AsStreamed() => new(Name, Url, headers, streamed: true);

    public HttpRequestMessage CreateRequest()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Url) { Version = HttpVersion.Version11, Content = new ByteArrayContent(Streamed ? StreamedBody : Body) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        foreach (var (header, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }

        return request;
    }
}

/// <summary>
/// One measured run: per-request latency of the successful requests (to the whole reply; for a stream, to its
/// <c>[DONE]</c>), for a stream also the time to its first content chunk, errors by kind, achieved rate.
/// </summary>
public sealed record RunResult(
    string Target,
    bool Streamed,
    string Load,
    int OfferedRps,
    int Sent,
    double[] LatenciesMs,
    double[] FirstTokenMs,
    IReadOnlyDictionary<string, int> Errors,
    double AchievedRps,
    double GeneratorLagP99Ms,
    double ServerCpuUsPerRequest)
{
    public int ErrorCount => Errors.Values.Sum();

    public double P50 => Percentile(LatenciesMs, 0.50);

    public double P99 => Percentile(LatenciesMs, 0.99);

    /// <summary>Time to the first content chunk (TTFT), streams only.</summary>
    public double FirstTokenP50 => Percentile(FirstTokenMs, 0.50);

    public double FirstTokenP99 => Percentile(FirstTokenMs, 0.99);

    /// <summary>Nearest-rank percentile of sorted latencies (both arrays are sorted on creation).</summary>
    public static double Percentile(double[] sorted, double p) => sorted.Length == 0
        ? double.NaN
        : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>
/// Sequential and open-loop load over HTTP/1.1 keep-alive connections. Open loop: a fixed schedule of send
/// times (request i at start + i / rate), each request's latency counted from its scheduled time, so a
/// server that falls behind is charged for the queue it builds (no coordinated omission). A streamed request is
/// read as it arrives: the time of the read that brought its first content chunk, and of the one that brought
/// <c>data: [DONE]</c>.
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

    /// <summary>One streamed request, to check what a target relays: the status, the headers, and the stream read.</summary>
    /// <returns>The body instead of a stream when the status is not 200.</returns>
    public async Task<(HttpStatusCode Status, string Headers, StreamedReply? Stream, string Text, string Body)> ProbeStreamAsync(Target target)
    {
        using var request = target.CreateRequest();
        using var timeout = new CancellationTokenSource(RequestTimeout);
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        var headers = string.Join("; ", response.Headers.Concat(response.Content.Headers).Select(h => $"{h.Key}: {string.Join(",", h.Value)}"));
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return (response.StatusCode, headers, null, "", await response.Content.ReadAsStringAsync(timeout.Token));
        }

        var text = new StringBuilder();
        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
        var stream = await StreamedReply.ReadAsync(body, text, timeout.Token);
        return (response.StatusCode, headers, stream, text.ToString(), "");
    }

    public async Task<RunResult> SequentialAsync(Target target, int count, Func<TimeSpan>? serverCpu)
    {
        var latencies = new List<double>(count);
        var firstTokens = new List<double>(target.Streamed ? count : 0);
        var errors = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var cpuBefore = serverCpu?.Invoke() ?? TimeSpan.Zero;
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var sent = Stopwatch.GetTimestamp();
            var outcome = await SendAsync(target);
            if (outcome.Error is null)
            {
                latencies.Add(Milliseconds(outcome.End - sent));
                if (target.Streamed)
                {
                    firstTokens.Add(Milliseconds(outcome.FirstContent - sent));
                }
            }
            else
            {
                errors.AddOrUpdate(outcome.Error, 1, (_, n) => n + 1);
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = (serverCpu?.Invoke() ?? TimeSpan.Zero) - cpuBefore;
        latencies.Sort();
        firstTokens.Sort();
        return new RunResult(target.Name, target.Streamed, "sequential", 0, count, [.. latencies], [.. firstTokens], errors,
            latencies.Count / elapsed, 0, cpu.TotalMicroseconds / count);
    }

    public async Task<RunResult> OpenLoopAsync(Target target, int rate, TimeSpan duration, Func<TimeSpan>? serverCpu)
    {
        var count = (int)(rate * duration.TotalSeconds);
        var latencies = new double[count];
        var firstTokens = new double[count];
        var lags = new double[count];
        var tasks = new Task[count];
        var errors = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        long lastCompletion = 0;
        var ticksPerRequest = (double)Stopwatch.Frequency / rate;
        var cpuBefore = serverCpu?.Invoke() ?? TimeSpan.Zero;
        var start = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 50); // 20 ms from now

        async Task SendScheduledAsync(int i, long due)
        {
            var outcome = await SendAsync(target);
            latencies[i] = outcome.Error is null ? Milliseconds(outcome.End - due) : double.NaN;
            firstTokens[i] = outcome.Error is null && target.Streamed ? Milliseconds(outcome.FirstContent - due) : double.NaN;
            if (outcome.Error is not null)
            {
                errors.AddOrUpdate(outcome.Error, 1, (_, n) => n + 1);
            }

            var now = Stopwatch.GetTimestamp();
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
                lags[i] = Milliseconds(Stopwatch.GetTimestamp() - due);
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
        var okFirstTokens = firstTokens.Where(l => !double.IsNaN(l)).ToArray();
        Array.Sort(ok);
        Array.Sort(okFirstTokens);
        Array.Sort(lags);
        var window = (lastCompletion - start) / (double)Stopwatch.Frequency;
        return new RunResult(target.Name, target.Streamed, $"{rate} rps", rate, count, ok, okFirstTokens, errors, ok.Length / window,
            RunResult.Percentile(lags, 0.99), cpu.TotalMicroseconds / count);
    }

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <returns>The error is null on a 200 with a body (for a stream: content, then <c>[DONE]</c>), else says what went wrong.</returns>
    private async Task<Outcome> SendAsync(Target target)
    {
        try
        {
            using var request = target.CreateRequest();
            using var timeout = new CancellationTokenSource(RequestTimeout);
            using var response = await _client.SendAsync(request,
                target.Streamed ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead, timeout.Token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var error = $"{target.Name}: HTTP {(int)response.StatusCode}";
                if (!ErrorSamples.ContainsKey(error))
                {
                    var body = await response.Content.ReadAsStringAsync(timeout.Token);
                    ErrorSamples.TryAdd(error, body.Length > 300 ? body[..300] : body);
                }

                return new Outcome($"HTTP {(int)response.StatusCode}", 0, 0);
            }

            if (!target.Streamed)
            {
                return new Outcome(response.Content.Headers.ContentLength is > 0 ? null : "empty body", 0, Stopwatch.GetTimestamp());
            }

            await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
            var read = await StreamedReply.ReadAsync(stream, null, timeout.Token);
            if (read.Error is not null)
            {
                ErrorSamples.TryAdd($"{target.Name}: {read.Error}", read.ErrorEvent ?? $"{read.ContentChunks} content chunks before it");
            }

            return new Outcome(read.Error, read.FirstContent, read.Done);
        }
        catch (OperationCanceledException)
        {
            return new Outcome("timeout", 0, 0);
        }
        catch (HttpRequestException e)
        {
            return new Outcome($"{e.HttpRequestError}", 0, 0);
        }
        catch (HttpIOException e)
        {
            return new Outcome($"stream {e.HttpRequestError}", 0, 0);
        }
        catch (IOException)
        {
            return new Outcome("stream broken", 0, 0);
        }
    }

    /// <summary>What one request came to: an error, or the Stopwatch times of its first content (streams) and of its end.</summary>
    private readonly record struct Outcome(string? Error, long FirstContent, long End);
}

/// <summary>
/// An OpenAI chat-completion stream read to its end: when the first chunk with content arrived, when
/// <c>data: [DONE]</c> did, how many content chunks and whether a usage chunk came, or what was wrong with it.
/// </summary>
public readonly record struct StreamedReply(long FirstContent, long Done, int ContentChunks, bool Usage, string? Error, string? ErrorEvent = null)
{
    public const string InBandError = "error event";

    [Flags]
    private enum ChunkKinds
    {
        None = 0,
        Content = 1,
        Usage = 2,
        Error = 4,
    }

    /// <summary>Reads <paramref name="body"/> to its end, appending the content to <paramref name="text"/> when given.</summary>
    public static async Task<StreamedReply> ReadAsync(Stream body, StringBuilder? text, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var (filled, firstContent, done, contentChunks, usage) = (0, 0L, 0L, 0, false);
        try
        {
            while (true)
            {
                if (filled == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await body.ReadAsync(buffer.AsMemory(filled), cancellationToken);
                if (read == 0)
                {
                    break;
                }

                var now = Stopwatch.GetTimestamp();
                filled += read;
                var consumed = 0;
                int newline;
                while (done == 0 && (newline = Array.IndexOf(buffer, (byte)'\n', consumed, filled - consumed)) >= 0)
                {
                    var line = buffer.AsSpan(consumed, newline - consumed).TrimEnd((byte)'\r');
                    consumed = newline + 1;
                    if (!line.StartsWith("data:"u8))
                    {
                        continue;
                    }

                    var data = line[5..].TrimStart((byte)' ');
                    if (data.SequenceEqual("[DONE]"u8))
                    {
                        done = now;
                        continue;
                    }

                    var kinds = Inspect(data, text);
                    if (kinds.HasFlag(ChunkKinds.Error))
                    {
                        return new StreamedReply(firstContent, 0, contentChunks, usage, InBandError, Encoding.UTF8.GetString(data));
                    }

                    if (kinds.HasFlag(ChunkKinds.Content))
                    {
                        contentChunks++;
                        firstContent = firstContent == 0 ? now : firstContent;
                    }

                    usage |= kinds.HasFlag(ChunkKinds.Usage);
                }

                // What follows [DONE] (the end of the chunked body) is read and dropped, so that the connection is reused.
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled = done == 0 ? filled - consumed : 0;
            }
        }
        catch (JsonException)
        {
            return new StreamedReply(firstContent, 0, contentChunks, usage, "malformed chunk");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        var error = done == 0 ? "no [DONE]" : contentChunks == 0 ? "no content" : null;
        return new StreamedReply(firstContent, done, contentChunks, usage, error);
    }

    /// <summary>
    /// What one event holds: content (a non-empty <c>choices[].delta.content</c>), usage (a <c>usage</c> object), or
    /// an error (an <c>error</c> member: a gateway's in-band error event).
    /// </summary>
    private static ChunkKinds Inspect(ReadOnlySpan<byte> json, StringBuilder? text)
    {
        var kinds = ChunkKinds.None;
        var reader = new Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            if (reader.CurrentDepth == 1 && reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.Null)
                {
                    return ChunkKinds.Error;
                }
            }

            if (reader.CurrentDepth == 1 && reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                kinds |= reader.TokenType == JsonTokenType.StartObject ? ChunkKinds.Usage : ChunkKinds.None;
                reader.Skip();
            }
            else if (reader.CurrentDepth == 4 && reader.ValueTextEquals("content"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0)
                {
                    kinds |= ChunkKinds.Content;
                    text?.Append(reader.GetString());
                }
            }
        }

        return kinds;
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
