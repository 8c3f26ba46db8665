using System.Text;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace PersistentAgents.Gateway.Tests;

/// <summary>
/// A fake OpenAI-compatible or Anthropic API on 127.0.0.1 (WireMock.Net), with the bodies each kind answers with,
/// and the provider adapter pointed at it.
/// </summary>
public sealed class FakeProvider : IDisposable
{
    public const string Key = "sk-test-SECRET-key-4471";

    public FakeProvider(string kind, double timeoutSeconds = 30)
    {
        Kind = kind == "openai" ? ProviderKind.Openai : ProviderKind.Anthropic;
        Server = WireMockServer.Start();
        Definition = new ProviderDefinition
        {
            Name = $"fake-{kind}",
            Kind = Kind,
            Endpoint = Kind == ProviderKind.Openai ? $"{Server.Url}/v1" : Server.Url,
            ApiKeySecret = "FAKE_KEY",
            TimeoutSeconds = timeoutSeconds,
            Models = [Model],
        };
        Provider = ChatClientProvider.Create(Definition, Key);
    }

    public ProviderKind Kind { get; }

    public WireMockServer Server { get; }

    public ProviderDefinition Definition { get; }

    public ChatClientProvider Provider { get; }

    public static ModelDefinition Model { get; } = new() { Name = "model-test", InputPricePerMTok = 1, OutputPricePerMTok = 2 };

    public static IReadOnlyList<AiChatMessage> Messages { get; } =
    [
        new(AiChatRole.System, "You route email."),
        new(AiChatRole.User, "Where does invoice 4471 go?"),
    ];

    public string Path => Kind == ProviderKind.Openai ? "/v1/chat/completions" : "/v1/messages";

    public void Dispose()
    {
        Provider.Dispose();
        Server.Stop();
        Server.Dispose();
    }

    public void Answer(int status, string body, string contentType = "application/json", IDictionary<string, string>? headers = null, TimeSpan? delay = null)
    {
        var response = Response.Create().WithStatusCode(status).WithHeader("Content-Type", contentType).WithBody(body);
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            response = response.WithHeader(name, value);
        }

        if (delay is { } wait)
        {
            response = response.WithDelay(wait);
        }

        Server.Given(Request.Create().WithPath(Path).UsingPost()).RespondWith(response);
    }

    /// <summary>A complete reply "Send it to billing." with 8 output tokens and 150 input tokens of which 100 were cached.</summary>
    public string ReplyBody(string text = "Send it to billing.") => Kind == ProviderKind.Openai
        ? $$$$"""
          {"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"model-test",
           "choices":[{"index":0,"message":{"role":"assistant","content":{{{{Json(text)}}}}},"finish_reason":"stop"}],
           "usage":{"prompt_tokens":150,"completion_tokens":8,"total_tokens":158,"prompt_tokens_details":{"cached_tokens":100}}}
          """
        : $$$$"""
          {"id":"msg_1","type":"message","role":"assistant","model":"model-test",
           "content":[{"type":"text","text":{{{{Json(text)}}}}}],"stop_reason":"end_turn","stop_sequence":null,
           "usage":{"input_tokens":20,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":8}}
          """;

    public string ErrorBody(string type) => Kind == ProviderKind.Openai
        ? $$$"""{"error":{"message":"nope","type":"{{{type}}}","param":null,"code":null}}"""
        : $$$"""{"type":"error","error":{"type":"{{{type}}}","message":"nope"}}""";

    /// <summary>The SSE body of a streamed reply made of <paramref name="deltas"/>; cut before the provider's finish when asked.</summary>
    public string StreamBody(IReadOnlyList<string> deltas, bool complete = true)
    {
        var sse = new StringBuilder();
        if (Kind == ProviderKind.Openai)
        {
            void Chunk(string choices, string usage = "") => sse.Append(
                $$"""data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"model-test","choices":{{choices}}{{usage}}}""").Append("\n\n");
            Chunk("""[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]""");
            foreach (var delta in deltas)
            {
                Chunk($$"""[{"index":0,"delta":{"content":{{Json(delta)}}},"finish_reason":null}]""");
            }

            if (complete)
            {
                Chunk("""[{"index":0,"delta":{},"finish_reason":"stop"}]""");
                Chunk("[]", ""","usage":{"prompt_tokens":150,"completion_tokens":8,"total_tokens":158,"prompt_tokens_details":{"cached_tokens":100}}""");
                sse.Append("data: [DONE]\n\n");
            }
        }
        else
        {
            void Event(string name, string data) => sse.Append("event: ").Append(name).Append("\ndata: ").Append(data).Append("\n\n");
            Event("message_start", """
                {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"model-test","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":1}}}
                """.Trim());
            Event("content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            foreach (var delta in deltas)
            {
                Event("content_block_delta", $$$"""{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":{{{Json(delta)}}}}}""");
            }

            if (complete)
            {
                Event("content_block_stop", """{"type":"content_block_stop","index":0}""");
                Event("message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":8}}""");
                Event("message_stop", """{"type":"message_stop"}""");
            }
        }

        return sse.ToString();
    }

    private static string Json(string text) => System.Text.Json.JsonSerializer.Serialize(text);
}
