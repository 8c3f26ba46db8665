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

/// <summary>What a client must see of a stream that ended well, one that broke, and an error answer.</summary>
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
