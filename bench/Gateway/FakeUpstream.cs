using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PersistentAgents.Bench.Gateway;

/// <summary>
/// A fake OpenAI-compatible provider on 127.0.0.1: <c>POST /v1/chat/completions</c> reads the whole body,
/// waits the configured delay and answers one fixed completion with usage — or, asked with <c>"stream": true</c>,
/// OpenAI's server-sent events: <see cref="StreamShape.Chunks"/> content chunks (the first, with the role, after
/// the delay, the others <see cref="StreamShape.GapMs"/> apart), a chunk with <c>finish_reason: "stop"</c>, a usage
/// chunk with empty choices when <c>stream_options.include_usage</c> is true, then <c>data: [DONE]</c>.
/// Runs in its own process (<c>GatewayBench --upstream PORT --delay MS --chunks N --chunk-gap MS</c>) so that it
/// does not share a runtime with the load generator. Delays are kept by <see cref="PreciseDelay"/>, not
/// Task.Delay, whose millisecond timer would add up to a millisecond of jitter: as much as the overhead being measured.
/// </summary>
public static class FakeUpstream
{
    public const string ReplyText = "Send it to billing, priority normal.";

    private const string Envelope = "\"id\":\"chatcmpl-fake-upstream\",\"created\":1764000000,\"model\":\"bench-model\"";

    private static readonly byte[] Reply = Encoding.UTF8.GetBytes(
        "{" + Envelope + ",\"object\":\"chat.completion\"," +
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" + ReplyText + "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}]," +
        "\"usage\":{\"prompt_tokens\":31,\"completion_tokens\":9,\"total_tokens\":40}}");

    /// <summary>The content of each streamed chunk: the reply's words in turn, one a chunk, as many as asked.</summary>
    public static string[] StreamedPieces(int chunks)
    {
        var words = ReplyText.Split(' ');
        return [.. Enumerable.Range(0, chunks).Select(i => (i == 0 ? "" : " ") + words[i % words.Length])];
    }

    /// <summary>The whole text a client reassembles from a stream of <paramref name="chunks"/> content chunks.</summary>
    public static string StreamedText(int chunks) => string.Concat(StreamedPieces(chunks));

    public static async Task<int> RunAsync(int port, int delayMs, StreamShape shape)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        var delay = new PreciseDelay(TimeSpan.FromMilliseconds(delayMs));
        var gap = shape.GapMs > 0 ? new PreciseDelay(TimeSpan.FromMilliseconds(shape.GapMs)) : null;
        var stream = new StreamReplies(shape.Chunks);
        app.MapPost("/v1/chat/completions", (RequestDelegate)(async context =>
        {
            var (streamed, includeUsage) = await ReadRequestAsync(context.Request.BodyReader, context.RequestAborted);
            if (delayMs > 0)
            {
                await delay.WaitAsync();
            }

            context.Response.StatusCode = 200;
            if (!streamed)
            {
                context.Response.ContentType = "application/json";
                context.Response.ContentLength = Reply.Length;
                await context.Response.BodyWriter.WriteAsync(Reply, context.RequestAborted);
                return;
            }

            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            for (var i = 0; i < stream.Content.Length; i++)
            {
                if (i > 0 && gap is not null)
                {
                    await gap.WaitAsync();
                }

                // Each chunk is written and flushed on its own, as a provider sends tokens as they come.
                await context.Response.BodyWriter.WriteAsync(stream.Content[i], context.RequestAborted);
            }

            await context.Response.BodyWriter.WriteAsync(includeUsage ? stream.EndWithUsage : stream.End, context.RequestAborted);
        }));

        // Stops by itself after two hours at most, should the benchmark that started it die without killing it.
        using var lifetime = new CancellationTokenSource(TimeSpan.FromHours(2));
        await app.RunAsync(lifetime.Token);
        return 0;
    }

    /// <summary>Reads the whole body and tells whether it asks for a stream, and for the usage chunk.</summary>
    private static async Task<(bool Streamed, bool IncludeUsage)> ReadRequestAsync(PipeReader body, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await body.ReadAsync(cancellationToken);
            if (read.IsCompleted || read.IsCanceled)
            {
                var asked = StreamAsked(read.Buffer);
                body.AdvanceTo(read.Buffer.End);
                return asked;
            }

            body.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private static (bool Streamed, bool IncludeUsage) StreamAsked(ReadOnlySequence<byte> body)
    {
        var (streamed, includeUsage) = (false, false);
        var reader = new Utf8JsonReader(body);
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            if (reader.CurrentDepth == 1 && reader.ValueTextEquals("stream"u8))
            {
                reader.Read();
                streamed = reader.TokenType == JsonTokenType.True;
            }
            else if (reader.CurrentDepth == 2 && reader.ValueTextEquals("include_usage"u8))
            {
                reader.Read();
                includeUsage = reader.TokenType == JsonTokenType.True;
            }
        }

        return (streamed, includeUsage);
    }

    /// <summary>The events of a streamed reply, encoded once at start.</summary>
    private sealed class StreamReplies
    {
        public StreamReplies(int chunks)
        {
            var pieces = StreamedPieces(chunks);
            Content = [.. pieces.Select((piece, i) => Event(
                $"[{{\"index\":0,\"delta\":{{{(i == 0 ? "\"role\":\"assistant\"," : "")}\"content\":{JsonSerializer.Serialize(piece)}}},\"logprobs\":null,\"finish_reason\":null}}]"))];
            var finish = Event("[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
            var usage = Event("[]", $",\"usage\":{{\"prompt_tokens\":31,\"completion_tokens\":{chunks},\"total_tokens\":{31 + chunks}}}");
            var done = Encoding.UTF8.GetBytes("data: [DONE]\n\n");
            End = [.. finish, .. done];
            EndWithUsage = [.. finish, .. usage, .. done];
        }

        public byte[][] Content { get; }

        public byte[] End { get; }

        public byte[] EndWithUsage { get; }

        private static byte[] Event(string choices, string usage = "") => Encoding.UTF8.GetBytes(
            "data: {" + Envelope + ",\"object\":\"chat.completion.chunk\",\"choices\":" + choices + usage + "}\n\n");
    }
}

/// <summary>How the fake upstream streams: how many content chunks, and the gap between two of them.</summary>
public readonly record struct StreamShape(int Chunks, int GapMs);

/// <summary>
/// A fixed delay to about a tenth of a millisecond: one thread sleeps (clock_nanosleep, no spinning) until the
/// oldest waiter is due. Every waiter has the same delay, so they fall due in the order they came.
/// </summary>
public sealed class PreciseDelay
{
    private readonly long _ticks;
    private readonly Queue<(long Due, TaskCompletionSource Done)> _waiting = new();
    private readonly object _gate = new();

    public PreciseDelay(TimeSpan delay)
    {
        _ticks = (long)(delay.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        new Thread(Run) { IsBackground = true, Name = "precise delay", Priority = ThreadPriority.AboveNormal }.Start();
    }

    public Task WaitAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _waiting.Enqueue((System.Diagnostics.Stopwatch.GetTimestamp() + _ticks, done));
            if (_waiting.Count == 1)
            {
                Monitor.Pulse(_gate);
            }
        }

        return done.Task;
    }

    private void Run()
    {
        while (true)
        {
            long next;
            lock (_gate)
            {
                while (_waiting.Count == 0)
                {
                    Monitor.Wait(_gate);
                }

                var now = System.Diagnostics.Stopwatch.GetTimestamp();
                while (_waiting.TryPeek(out var head) && head.Due <= now)
                {
                    _waiting.Dequeue().Done.TrySetResult();
                }

                if (!_waiting.TryPeek(out var first))
                {
                    continue;
                }

                next = first.Due;
            }

            Sleeper.SleepUntil(next);
        }
    }
}
