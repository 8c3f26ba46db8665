using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>The OpenAI-compatible API's tests' clients and catalogs: the official OpenAI client, raw HTTP, and raw server-sent events.</summary>
internal static class OpenAiTestSupport
{
    /// <summary>
    /// <see cref="TestCatalogs.Simulated"/>, with sim-best able to call tools and answer JSON (and JSON
    /// shaped by a schema), so that a tool or JSON request has a candidate and auto still starts at sim-best.
    /// </summary>
    public const string ToolCatalog = """
        simulated: always
        providers:
          - name: sim-best
            kind: simulated
            models:
              - name: best
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.7
                capabilities: [streaming, json, tools]
                simulation: { quality: 0.95, failureRate: 0, latencyMs: 2 }
          - name: sim-fair
            kind: simulated
            models:
              - name: fair
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.7
                capabilities: [streaming, json]
                simulation: { quality: 0.55, failureRate: 0, latencyMs: 2 }
          - name: sim-poor
            kind: simulated
            models:
              - name: poor
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.7
                simulation: { quality: 0.3, failureRate: 0, latencyMs: 2 }
        """;

    public static OpenAIClient OpenAiClientFor(TestHost host) => new(
        new ApiKeyCredential("any-key-the-gateway-ignores"),
        new OpenAIClientOptions { Endpoint = new Uri(host.Rest.BaseAddress!, "v1"), RetryPolicy = new ClientRetryPolicy(0) });

    public static HttpRequestMessage ChatRequest(string json, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    public static async Task<(HttpStatusCode Status, JsonObject Body)> PostAsync(TestHost host, string json, params (string Name, string Value)[] headers)
    {
        using var request = ChatRequest(json, headers);
        using var response = await host.Rest.SendAsync(request);
        return (response.StatusCode, await TestHost.ReadObjectAsync(response));
    }

    /// <summary>A streamed answer as it came over the wire: the response (headers) and each event's data, in order (none when the answer is not an event stream).</summary>
    public static async Task<(HttpResponseMessage Response, List<string> Events, string Raw)> StreamAsync(TestHost host, string json, params (string Name, string Value)[] headers)
    {
        using var request = ChatRequest(json, headers);
        var response = await host.Rest.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var raw = await response.Content.ReadAsStringAsync();
        var events = new List<string>();
        if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
        {
            return (response, events, raw);
        }

        foreach (var block in raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.StartsWith("data: ", block, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', block);
            events.Add(block["data: ".Length..]);
        }

        return (response, events, raw);
    }

    /// <summary>The content deltas of a stream's chunks, joined.</summary>
    public static string TextOf(IEnumerable<JsonObject> chunks) => string.Concat(chunks
        .Where(c => c["choices"]!.AsArray().Count > 0)
        .Select(c => c["choices"]![0]!["delta"]!["content"]?.GetValue<string>() ?? ""));
}
