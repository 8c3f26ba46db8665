using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PersistentAgents.Bench.Gateway;

/// <summary>
/// A fake OpenAI-compatible provider on 127.0.0.1: <c>POST /v1/chat/completions</c> reads the whole body,
/// waits the configured delay and answers one fixed completion with usage. Runs in its own process
/// (<c>GatewayBench --upstream PORT --delay MS</c>) so that it does not share a runtime with the load generator.
/// The delay is kept by <see cref="PreciseDelay"/>, not Task.Delay, whose millisecond timer would add up to a
/// millisecond of jitter: as much as the overhead being measured.
/// </summary>
public static class FakeUpstream
{
    public const string ReplyText = "Send it to billing, priority normal.";

    private static readonly byte[] Reply = Encoding.UTF8.GetBytes(
        "{\"id\":\"chatcmpl-fake-upstream\",\"object\":\"chat.completion\",\"created\":1764000000,\"model\":\"bench-model\"," +
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" + ReplyText + "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}]," +
        "\"usage\":{\"prompt_tokens\":31,\"completion_tokens\":9,\"total_tokens\":40}}");

    public static async Task<int> RunAsync(int port, int delayMs)
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
        app.MapPost("/v1/chat/completions", (RequestDelegate)(async context =>
        {
            await DrainAsync(context.Request.BodyReader, context.RequestAborted);
            if (delayMs > 0)
            {
                await delay.WaitAsync();
            }

            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = Reply.Length;
            await context.Response.BodyWriter.WriteAsync(Reply, context.RequestAborted);
        }));

        // Stops by itself after two hours at most, should the benchmark that started it die without killing it.
        using var lifetime = new CancellationTokenSource(TimeSpan.FromHours(2));
        await app.RunAsync(lifetime.Token);
        return 0;
    }

    private static async Task DrainAsync(PipeReader body, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await body.ReadAsync(cancellationToken);
            body.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted || read.IsCanceled)
            {
                return;
            }
        }
    }
}

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
