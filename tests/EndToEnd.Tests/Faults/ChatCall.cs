using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace PersistentAgents.EndToEnd.Tests.Faults;

/// <summary>
/// One <c>POST /v1/chat/completions</c> as a client sees it, over raw HTTP so that every byte of a stream is
/// visible: the status and headers, and either the JSON body or the server-sent events in order.
/// </summary>
public sealed class ChatCall
{
    private ChatCall(int status, HttpResponseHeaders headers, string body, IReadOnlyList<(string? Event, string Data)> events, TimeSpan elapsed)
    {
        Status = status;
        Headers = headers;
        Body = body;
        Events = events;
        Elapsed = elapsed;
    }

    public int Status { get; }

    public HttpResponseHeaders Headers { get; }

    /// <summary>The whole body as received.</summary>
    public string Body { get; }

    /// <summary>The server-sent events (an <c>event:</c> name when there was one, and the <c>data:</c>).</summary>
    public IReadOnlyList<(string? Event, string Data)> Events { get; }

    public TimeSpan Elapsed { get; }

    /// <summary>The stream ended with <c>data: [DONE]</c>.</summary>
    public bool Done => Events.Count > 0 && Events[^1].Data == "[DONE]";

    /// <summary>The <c>chat.completion.chunk</c> events.</summary>
    public IReadOnlyList<JsonObject> Chunks =>
    [
        .. Events.Where(e => e.Data != "[DONE]")
            .Select(e => JsonNode.Parse(e.Data)!.AsObject())
            .Where(o => o["object"]?.GetValue<string>() == "chat.completion.chunk"),
    ];

    /// <summary>The streamed text, all content deltas joined.</summary>
    public string StreamedText => string.Concat(Chunks
        .SelectMany(c => c["choices"]!.AsArray())
        .Select(choice => choice!["delta"]?["content"]?.GetValue<string>()));

    /// <summary>The streamed tool calls, their deltas joined per index as OpenAI's clients join them.</summary>
    public IReadOnlyList<(string? Id, string Name, string Arguments)> StreamedToolCalls =>
    [
        .. Chunks.SelectMany(c => c["choices"]!.AsArray())
            .SelectMany(choice => choice!["delta"]?["tool_calls"]?.AsArray() ?? [])
            .GroupBy(call => call!["index"]!.GetValue<int>())
            .OrderBy(calls => calls.Key)
            .Select(calls => (
                Id: calls.Select(c => c!["id"]?.GetValue<string>()).FirstOrDefault(id => id is not null),
                Name: string.Concat(calls.Select(c => c!["function"]?["name"]?.GetValue<string>())),
                Arguments: string.Concat(calls.Select(c => c!["function"]?["arguments"]?.GetValue<string>())))),
    ];

    public IReadOnlyList<string> FinishReasons =>
    [
        .. Chunks.SelectMany(c => c["choices"]!.AsArray())
            .Select(choice => choice!["finish_reason"]?.GetValue<string>())
            .OfType<string>(),
    ];

    /// <summary>The usage of the last chunk that carried one.</summary>
    public JsonObject? StreamedUsage => Chunks.LastOrDefault(c => c["usage"] is JsonObject)?["usage"]!.AsObject();

    /// <summary>The in-band error event of a stream that broke: <c>data: {"error":{...}}</c> (or <c>event: error</c>).</summary>
    public JsonObject? StreamError => Events
        .Where(e => e.Data != "[DONE]")
        .Select(e => (e.Event, Json: JsonNode.Parse(e.Data)!.AsObject()))
        .Where(e => e.Json["error"] is JsonObject || e.Event == "error")
        .Select(e => e.Json["error"] as JsonObject ?? e.Json)
        .LastOrDefault();

    /// <summary>A JSON body (a non-streamed completion, or an error answered before any event).</summary>
    public JsonObject Json => JsonNode.Parse(Body)!.AsObject();

    public string? Header(string name) => Headers.TryGetValues(name, out var values) ? values.Single() : null;

    public static Task<ChatCall> StreamAsync(TestHost host, string prompt, params (string Name, string Value)[] headers) =>
        PostAsync(host, Request(prompt, stream: true), headers);

    public static Task<ChatCall> CompleteAsync(TestHost host, string prompt, params (string Name, string Value)[] headers) =>
        PostAsync(host, Request(prompt, stream: false), headers);

    /// <summary>A request for the whole catalog in its order (<c>model: auto</c>), as the official clients send it.</summary>
    public static JsonObject Request(string prompt, bool stream)
    {
        var request = new JsonObject
        {
            ["model"] = "auto",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }),
            ["stream"] = stream,
        };
        if (stream)
        {
            request["stream_options"] = new JsonObject { ["include_usage"] = true };
        }

        return request;
    }

    public static async Task<ChatCall> PostAsync(TestHost host, JsonObject body, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var clock = Stopwatch.StartNew();
        using var response = await host.Rest.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();
        var isStream = response.Content.Headers.ContentType?.MediaType == "text/event-stream";
        return new ChatCall((int)response.StatusCode, response.Headers, text, isStream ? ParseEvents(text) : [], clock.Elapsed);
    }

    private static List<(string? Event, string Data)> ParseEvents(string body) =>
    [
        .. body.Replace("\r\n", "\n", StringComparison.Ordinal)
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(block => block.Split('\n'))
            .Where(lines => lines.Any(l => l.StartsWith("data:", StringComparison.Ordinal)))
            .Select(lines => (
                Event: lines.FirstOrDefault(l => l.StartsWith("event:", StringComparison.Ordinal))?["event:".Length..].Trim(),
                Data: string.Join('\n', lines.Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l["data:".Length..].TrimStart())))),
    ];

    public override string ToString() => $"HTTP {Status} after {Elapsed.TotalMilliseconds:0} ms: {Body}";
}

/// <summary>The embedded host over fake upstreams, one catalog provider (kind openai) per fake, in candidate order.</summary>
public static class FaultHost
{
    public const string KeyVariable = "PA_TEST_FAULTS_OPENAI_KEY";

    /// <summary>The API key every fake provider gets, from <see cref="KeyVariable"/>.</summary>
    public const string Key = "sk-fault-test";

    /// <summary>
    /// Limits at test scale: 1 s to the first token and 1 s of stall per model (in the catalog; the providers' own
    /// timeout stays at 10 s, so that a test can tell which limit acted), a 5 s deadline for the whole request, two
    /// retries 20 ms apart, no response cache (each test repeats its prompts on purpose).
    /// </summary>
    public static readonly string[] Settings =
    [
        "--Resilience:RequestDeadline", "00:00:05",
        "--Resilience:MaxRetries", "2",
        "--Resilience:RetryBaseDelay", "00:00:00.020",
        "--Cache:Enabled", "false",
    ];

    private static readonly Lazy<Task> s_warmedUp = new(WarmUpAsync);

    public static Task<TestHost> StartAsync(params FakeProvider[] providers) => StartAsync(providers, []);

    public static async Task<TestHost> StartAsync(FakeProvider[] providers, string[] settings)
    {
        Environment.SetEnvironmentVariable(KeyVariable, Key);
        await s_warmedUp.Value;
        return await TestHost.StartAsync(TestHost.NewDataDir(), Catalog(providers), [.. Settings, .. settings]);
    }

    /// <summary>
    /// One streamed and one plain call through a provider of kind openai, once per test run: the first call in a
    /// process compiles Kestrel's, the SDK's and the gateway's paths, which on a busy machine can take longer than the
    /// 1 s limits under test, and would make a test's first attempt time out for a reason that is not its fault.
    /// </summary>
    private static async Task WarmUpAsync()
    {
        await using var upstream = await FakeOpenAiUpstream.StartAsync("warm-up");
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), Catalog([new FakeProvider("warm-up", upstream)]), Settings);
        await ChatCall.StreamAsync(host, "Warm up the streamed path");
        await ChatCall.CompleteAsync(host, "Warm up the plain path");
    }

    public static string Catalog(IEnumerable<FakeProvider> providers)
    {
        var yaml = new StringBuilder("simulated: never\nproviders:\n");
        foreach (var p in providers)
        {
            yaml.Append(System.Globalization.CultureInfo.InvariantCulture, $"""
                  - name: {p.Name}
                    kind: openai
                    endpoint: {p.Upstream.Endpoint}
                    apiKeySecret: {KeyVariable}
                    timeoutSeconds: 10
                    models:
                      - name: {p.Upstream.Model}
                        inputPricePerMTok: {p.InputPricePerMTok}
                        outputPricePerMTok: {p.OutputPricePerMTok}
                        contextWindow: {p.ContextWindow}
                        quality: 0.8
                        capabilities: [{string.Join(", ", p.Capabilities)}]
                        firstTokenSeconds: 1
                        stallSeconds: 1

                """);
        }

        return yaml.ToString();
    }
}

/// <summary>A catalog provider served by a fake upstream, with the model's prices, context window and capabilities.</summary>
public sealed record FakeProvider(string Name, FakeOpenAiUpstream Upstream)
{
    public double InputPricePerMTok { get; init; } = 1.0;

    public double OutputPricePerMTok { get; init; } = 2.0;

    public int ContextWindow { get; init; } = 128_000;

    public IReadOnlyList<string> Capabilities { get; init; } = ["streaming"];
}

public static class ChatAssert
{
    /// <summary>A stream that ended cleanly: no error event, a finish reason, the usage chunk and <c>[DONE]</c>.</summary>
    public static void CompleteStream(ChatCall call, string expectedText)
    {
        Assert.True(call.Status == 200, call.ToString());
        Assert.Null(call.StreamError);
        Assert.Equal(expectedText, call.StreamedText);
        Assert.Equal(["stop"], call.FinishReasons);
        Assert.NotNull(call.StreamedUsage);
        Assert.True(call.Done, $"no [DONE] at the end: {call}");
    }

    /// <summary>A stream broken after text was sent: the text, then an in-band error; no finish "stop", no <c>[DONE]</c>.</summary>
    public static JsonObject BrokenStream(ChatCall call, string expectedText)
    {
        Assert.True(call.Status == 200, call.ToString());
        Assert.Equal(expectedText, call.StreamedText);
        var error = call.StreamError;
        Assert.True(error is not null, $"no in-band error event: {call}");
        Assert.DoesNotContain("stop", call.FinishReasons);
        Assert.False(call.Done, $"a broken stream ended with [DONE]: {call}");
        Assert.False(string.IsNullOrWhiteSpace(error["message"]?.GetValue<string>()), error.ToJsonString());
        return error;
    }

    /// <summary>An OpenAI error object answered with <paramref name="status"/>.</summary>
    public static JsonObject Error(ChatCall call, int status, string type, string? code)
    {
        Assert.True(call.Status == status, call.ToString());
        var error = call.Json["error"]!.AsObject();
        Assert.Equal(type, error["type"]?.GetValue<string>());
        Assert.Equal(code, error["code"]?.GetValue<string>());
        return error;
    }
}
