using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PersistentAgents.EndToEnd.Tests.Faults;

/// <summary>
/// A fake OpenAI chat-completions API on 127.0.0.1 (a free port) for fault tests: <c>POST /v1/chat/completions</c>
/// in OpenAI's wire format, streamed (<c>data:</c> chunks, a usage chunk when <c>stream_options.include_usage</c>,
/// then <c>data: [DONE]</c>) or not. Each request takes the next behaviour of a queue, or <see cref="Default"/> when
/// the queue is empty, and is recorded with its arrival time. One instance stands for one provider.
/// </summary>
public sealed class FakeOpenAiUpstream : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<UpstreamBehaviour> _script = new();
    private readonly List<RecordedRequest> _requests = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private FakeOpenAiUpstream(WebApplication app, string model)
    {
        _app = app;
        Model = model;
    }

    /// <summary>The model name the fake answers as (the catalog's model of this provider).</summary>
    public string Model { get; }

    /// <summary>The API base address to put in a catalog's <c>endpoint</c>, ending in <c>/v1</c>.</summary>
    public Uri Endpoint { get; private set; } = null!;

    /// <summary>What a request does when the queue is empty: by default a short normal answer.</summary>
    public UpstreamBehaviour Default { get; set; } = UpstreamBehaviour.Answer("The invoice goes to the billing team.");

    /// <summary>Every request received, in order.</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>How many requests reached this provider.</summary>
    public int Count
    {
        get
        {
            lock (_requests)
            {
                return _requests.Count;
            }
        }
    }

    public static async Task<FakeOpenAiUpstream> StartAsync(string model)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        // Requests left hanging (silent, stalled) are ended by DisposeAsync; the host need not wait for them.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        var app = builder.Build();
        var upstream = new FakeOpenAiUpstream(app, model);
        app.MapPost("/v1/chat/completions", (RequestDelegate)upstream.HandleAsync);
        await app.StartAsync();
        upstream.Endpoint = new Uri(app.ListeningAddresses()[0], "v1");
        return upstream;
    }

    /// <summary>Queues behaviours for the next requests, in order.</summary>
    public void Enqueue(params UpstreamBehaviour[] behaviours)
    {
        foreach (var behaviour in behaviours)
        {
            _script.Enqueue(behaviour);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var arrivedAt = _clock.Elapsed;
        JsonObject body;
        try
        {
            using var reading = new StreamReader(context.Request.Body, Encoding.UTF8);
            body = JsonNode.Parse(await reading.ReadToEndAsync(context.RequestAborted))!.AsObject();
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            body = []; // the caller gave up while sending: it still reached this provider
        }

        var request = new RecordedRequest(body, arrivedAt, context.Request.Headers.Authorization.ToString());
        lock (_requests)
        {
            _requests.Add(request);
        }

        if (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        var behaviour = _script.TryDequeue(out var next) ? next : Default;
        while (behaviour is UpstreamBehaviour.Decided decided)
        {
            behaviour = decided.Choose(request);
        }

        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        try
        {
            await RespondAsync(context, body, behaviour, ended.Token);
        }
        catch (OperationCanceledException) when (ended.IsCancellationRequested)
        {
            // The gateway gave up on this call (as it should on a silent or stalled provider), or the test ended.
        }
        catch (IOException)
        {
            // The gateway closed the connection while we were writing.
        }
    }

    private async Task RespondAsync(HttpContext context, JsonObject body, UpstreamBehaviour behaviour, CancellationToken token)
    {
        switch (behaviour)
        {
            case UpstreamBehaviour.Failure failure:
                if (failure.RetryAfter is { } retryAfter)
                {
                    context.Response.Headers.RetryAfter = retryAfter.TotalSeconds.ToString(CultureInfo.InvariantCulture);
                }

                context.Response.StatusCode = failure.Status;
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(JsonSerializer.Serialize(new JsonObject
                {
                    ["error"] = new JsonObject
                    {
                        ["message"] = failure.Message,
                        ["type"] = failure.Type,
                        ["param"] = failure.Param,
                        ["code"] = failure.Code,
                    },
                }, Compact), token);
                return;
            case UpstreamBehaviour.Reset:
                Reset(context);
                return;
            case UpstreamBehaviour.Silent:
                await Task.Delay(Timeout.Infinite, token);
                return;
            case UpstreamBehaviour.Reply reply:
                if (body["stream"]?.GetValue<bool>() == true)
                {
                    await StreamAsync(context, body, reply, token);
                }
                else
                {
                    await AnswerAsync(context, reply, token);
                }

                return;
            default:
                throw new InvalidOperationException($"unknown behaviour {behaviour}");
        }
    }

    /// <summary>A non-streamed <c>chat.completion</c>; the stream faults cut, stall or garble its body instead.</summary>
    private async Task AnswerAsync(HttpContext context, UpstreamBehaviour.Reply reply, CancellationToken token)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = reply.ToolCalls.Count > 0 ? null : reply.Text, ["refusal"] = null };
        if (reply.ToolCalls.Count > 0)
        {
            message["tool_calls"] = new JsonArray([.. reply.ToolCalls.Select((call, i) => (JsonNode)new JsonObject
            {
                ["id"] = $"call_{i}",
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments },
            })]);
        }

        var completion = new JsonObject
        {
            ["id"] = "chatcmpl-fake",
            ["object"] = "chat.completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = Model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = message,
                ["logprobs"] = null,
                ["finish_reason"] = reply.ToolCalls.Count > 0 ? "tool_calls" : "stop",
            }),
            ["usage"] = Usage(reply),
            ["system_fingerprint"] = null,
        };
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(completion, Compact));
        await Task.Delay(reply.FirstTokenDelay, token);
        context.Response.ContentType = "application/json";
        if (reply.Fault == StreamFault.None || reply.Fault == StreamFault.NoDone)
        {
            context.Response.ContentLength = json.Length;
            await context.Response.Body.WriteAsync(json, token);
            return;
        }

        await context.Response.Body.WriteAsync(json.AsMemory(0, json.Length / 2), token);
        await context.Response.Body.FlushAsync(token);
        switch (reply.Fault)
        {
            case StreamFault.Cut:
                await CutAsync(context, token);
                break;
            case StreamFault.Stall:
                await Task.Delay(Timeout.Infinite, token);
                break;
            case StreamFault.Malformed:
                break; // half a JSON document, then a clean end
        }
    }

    /// <summary>The reply as OpenAI streams it, with the scripted fault at its place.</summary>
    private async Task StreamAsync(HttpContext context, JsonObject body, UpstreamBehaviour.Reply reply, CancellationToken token)
    {
        var includeUsage = body["stream_options"]?["include_usage"]?.GetValue<bool>() == true;
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        await response.StartAsync(token);
        await response.Body.FlushAsync(token);
        await Task.Delay(reply.FirstTokenDelay, token);

        var sent = 0;
        async Task<bool> SendAsync(JsonObject delta, string? finishReason, bool countsAsChunk)
        {
            if (countsAsChunk && reply.Fault != StreamFault.None && reply.Fault != StreamFault.NoDone && sent == reply.FaultAfterChunks)
            {
                await FaultAsync(context, reply.Fault, token);
                return false;
            }

            var chunk = new JsonObject
            {
                ["id"] = "chatcmpl-fake",
                ["object"] = "chat.completion.chunk",
                ["created"] = created,
                ["model"] = Model,
                ["system_fingerprint"] = null,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["delta"] = delta,
                    ["logprobs"] = null,
                    ["finish_reason"] = finishReason,
                }),
            };
            if (includeUsage)
            {
                chunk["usage"] = null;
            }

            await WriteEventAsync(response, JsonSerializer.Serialize(chunk, Compact), token);
            sent += countsAsChunk ? 1 : 0;
            return true;
        }

        if (!await SendAsync(new JsonObject { ["role"] = "assistant", ["content"] = "", ["refusal"] = null }, null, countsAsChunk: false))
        {
            return;
        }

        foreach (var piece in reply.Chunks())
        {
            if (!await SendAsync(new JsonObject { ["content"] = piece }, null, countsAsChunk: true))
            {
                return;
            }
        }

        for (var i = 0; i < reply.ToolCalls.Count; i++)
        {
            var call = reply.ToolCalls[i];
            var opening = new JsonObject
            {
                ["index"] = i,
                ["id"] = $"call_{i}",
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = "" },
            };
            if (!await SendAsync(new JsonObject { ["tool_calls"] = new JsonArray(opening) }, null, countsAsChunk: true))
            {
                return;
            }

            // The arguments in two fragments, as OpenAI sends them piecewise.
            var half = call.Arguments.Length / 2;
            foreach (var fragment in new[] { call.Arguments[..half], call.Arguments[half..] })
            {
                var part = new JsonObject { ["index"] = i, ["function"] = new JsonObject { ["arguments"] = fragment } };
                if (!await SendAsync(new JsonObject { ["tool_calls"] = new JsonArray(part) }, null, countsAsChunk: true))
                {
                    return;
                }
            }
        }

        if (!await SendAsync([], reply.ToolCalls.Count > 0 ? "tool_calls" : "stop", countsAsChunk: true))
        {
            return;
        }

        if (includeUsage)
        {
            await WriteEventAsync(response, JsonSerializer.Serialize(new JsonObject
            {
                ["id"] = "chatcmpl-fake",
                ["object"] = "chat.completion.chunk",
                ["created"] = created,
                ["model"] = Model,
                ["system_fingerprint"] = null,
                ["choices"] = new JsonArray(),
                ["usage"] = Usage(reply),
            }, Compact), token);
        }

        if (reply.Fault != StreamFault.NoDone)
        {
            await WriteEventAsync(response, "[DONE]", token);
        }
    }

    private static async Task FaultAsync(HttpContext context, StreamFault fault, CancellationToken token)
    {
        switch (fault)
        {
            case StreamFault.Cut:
                await CutAsync(context, token);
                break;
            case StreamFault.Stall:
                await Task.Delay(Timeout.Infinite, token);
                break;
            case StreamFault.Malformed:
                // A chunk cut off inside its JSON, then the stream goes on as if nothing happened.
                await WriteEventAsync(context.Response, """{"id":"chatcmpl-fake","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"unterminated""", token);
                break;
        }
    }

    private static async Task WriteEventAsync(HttpResponse response, string data, CancellationToken token)
    {
        await response.WriteAsync($"data: {data}\n\n", token);
        await response.Body.FlushAsync(token);
    }

    private static JsonObject Usage(UpstreamBehaviour.Reply reply) => new()
    {
        ["prompt_tokens"] = reply.PromptTokens,
        ["completion_tokens"] = reply.CompletionTokens,
        ["total_tokens"] = reply.PromptTokens + reply.CompletionTokens,
    };

    /// <summary>
    /// Closes the connection in the middle of the body (no terminating chunk), once what was sent had time to be read:
    /// a reset right away could make the receiving side discard data it had not read yet.
    /// </summary>
    private static async Task CutAsync(HttpContext context, CancellationToken token)
    {
        await Task.Delay(TimeSpan.FromMilliseconds(150), token);
        context.Abort();
    }

    /// <summary>Drops the connection with a TCP reset (linger 0), whatever was sent on it so far.</summary>
    private static void Reset(HttpContext context)
    {
        if (context.Features.Get<IConnectionSocketFeature>()?.Socket is Socket socket)
        {
            socket.LingerState = new LingerOption(true, 0);
        }

        context.Abort();
    }
}

/// <summary>One request as the fake received it, with when it arrived (since the fake started).</summary>
public sealed record RecordedRequest(JsonObject Body, TimeSpan ArrivedAt, string Authorization)
{
    public JsonArray Messages => Body["messages"]!.AsArray();

    public string LastRole => Messages[^1]!["role"]!.GetValue<string>();
}

/// <summary>Where a scripted reply breaks, at <see cref="UpstreamBehaviour.Reply.FaultAfterChunks"/>.</summary>
public enum StreamFault
{
    None,

    /// <summary>The connection is closed mid-answer: no finish chunk, no <c>[DONE]</c>, no end of the chunked body.</summary>
    Cut,

    /// <summary>Nothing more is sent and the connection stays open.</summary>
    Stall,

    /// <summary>A chunk whose JSON is cut off; later chunks are well formed.</summary>
    Malformed,

    /// <summary>The finish chunk and the usage chunk are sent, then the body ends without <c>data: [DONE]</c>.</summary>
    NoDone,
}

/// <summary>What the fake does with one request.</summary>
public abstract record UpstreamBehaviour
{
    private UpstreamBehaviour()
    {
    }

    /// <summary>A normal answer: the text in word chunks (streamed), with the given usage.</summary>
    public static Reply Answer(string text, int promptTokens = 40, int completionTokens = 12) =>
        new(text, [], promptTokens, completionTokens, TimeSpan.Zero, StreamFault.None, 0);

    /// <summary>An OpenAI error answer: <c>{"error":{message,type,param,code}}</c>, with a Retry-After header when given.</summary>
    public static Failure Fail(int status, string type, string? code, string message, string? param = null, TimeSpan? retryAfter = null) =>
        new(status, type, code, message, param, retryAfter);

    public static Failure RateLimited(TimeSpan? retryAfter = null) =>
        Fail(429, "requests", "rate_limit_exceeded", "Rate limit reached for requests", retryAfter: retryAfter);

    public static Failure ServerError(int status = 500) =>
        Fail(status, "server_error", null, status == 503 ? "The server is overloaded or not ready yet." : "The server had an error while processing your request.");

    /// <summary>The connection is reset before any answer.</summary>
    public static UpstreamBehaviour ResetConnection { get; } = new Reset();

    /// <summary>The request is read and never answered: no status line, no headers.</summary>
    public static UpstreamBehaviour AcceptThenSilent { get; } = new Silent();

    /// <summary>Decides per request, from what it asks (e.g. a refusal of a trailing assistant message).</summary>
    public static UpstreamBehaviour When(Func<RecordedRequest, bool> condition, UpstreamBehaviour then, UpstreamBehaviour otherwise) =>
        new Decided(request => condition(request) ? then : otherwise);

    /// <summary>Decides per request, e.g. from a switch the test flips over time.</summary>
    public static UpstreamBehaviour Decide(Func<UpstreamBehaviour> choose) => new Decided(_ => choose());

    public sealed record Reply(
        string Text,
        IReadOnlyList<(string Name, string Arguments)> ToolCalls,
        int PromptTokens,
        int CompletionTokens,
        TimeSpan FirstTokenDelay,
        StreamFault Fault,
        int FaultAfterChunks) : UpstreamBehaviour
    {
        /// <summary>Waits this long after the headers (streamed) or before the answer (not streamed).</summary>
        public Reply WithFirstTokenAfter(TimeSpan delay) => this with { FirstTokenDelay = delay };

        /// <summary>Breaks the stream as <paramref name="fault"/> says once <paramref name="afterChunks"/> chunks went out.</summary>
        public Reply BreakingWith(StreamFault fault, int afterChunks = 0) => this with { Fault = fault, FaultAfterChunks = afterChunks };

        public Reply CallingTool(string name, string arguments) => this with { ToolCalls = [.. ToolCalls, (name, arguments)] };

        /// <summary>The text as OpenAI streams it: a word (with its following space) per chunk.</summary>
        public IEnumerable<string> Chunks()
        {
            var start = 0;
            for (var i = 1; i <= Text.Length; i++)
            {
                if (i == Text.Length || (Text[i - 1] == ' ' && Text[i] != ' '))
                {
                    yield return Text[start..i];
                    start = i;
                }
            }
        }
    }

    public sealed record Failure(int Status, string Type, string? Code, string Message, string? Param, TimeSpan? RetryAfter) : UpstreamBehaviour;

    internal sealed record Reset : UpstreamBehaviour;

    internal sealed record Silent : UpstreamBehaviour;

    internal sealed record Decided(Func<RecordedRequest, UpstreamBehaviour> Choose) : UpstreamBehaviour;
}
