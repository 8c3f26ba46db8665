using System.Globalization;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;

namespace PersistentAgents.Gateway.Tests;

/// <summary>The OpenAI-compatible and Anthropic adapters against fake APIs on 127.0.0.1: replies, usage, failures.</summary>
public sealed class ChatClientProviderTests
{
    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_reply_comes_with_all_input_tokens_and_the_cached_part(string kind)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(200, fake.ReplyBody());

        var completion = await fake.Provider.CompleteAsync(FakeProvider.Model, "email_routing", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None);

        Assert.Equal("Send it to billing.", completion.Text);
        Assert.Equal(150, completion.InputTokens); // Anthropic: 20 uncached + 100 cache reads + 30 cache writes
        Assert.Equal(100, completion.CachedInputTokens);
        Assert.Equal(8, completion.OutputTokens);
        Assert.Null(completion.ReportedQuality);

        var request = Assert.Single(fake.Server.LogEntries).RequestMessage;
        Assert.Contains("Where does invoice 4471 go?", request.Body, StringComparison.Ordinal);
        Assert.Contains("\"model-test\"", request.Body, StringComparison.Ordinal);
        Assert.Equal($"Bearer {FakeProvider.Key}", request.Headers!["Authorization"].Single()); // both SDKs send a bearer key
        if (fake.Kind == ProviderKind.Anthropic)
        {
            Assert.True(request.Headers!.ContainsKey("anthropic-version"));
            Assert.Contains("\"max_tokens\"", request.Body, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_429_is_retryable_after_the_seconds_the_provider_asked_for(string kind)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(429, fake.ErrorBody("rate_limit_error"), headers: new Dictionary<string, string> { ["Retry-After"] = "7" });

        var failure = await FailureOf(fake);

        Assert.True(failure.Retryable);
        Assert.Equal(TimeSpan.FromSeconds(7), failure.RetryAfter);
        Assert.Contains("429", failure.Message, StringComparison.Ordinal);
        Assert.Single(fake.Server.LogEntries); // the SDK's own retries are off
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_429_is_retryable_after_the_date_the_provider_named(string kind)
    {
        using var fake = new FakeProvider(kind);
        var until = DateTimeOffset.UtcNow.AddSeconds(40);
        fake.Answer(429, fake.ErrorBody("rate_limit_error"),
            headers: new Dictionary<string, string> { ["Retry-After"] = until.ToString("r", CultureInfo.InvariantCulture) });

        var failure = await FailureOf(fake);

        Assert.True(failure.Retryable);
        Assert.NotNull(failure.RetryAfter);
        Assert.InRange(failure.RetryAfter.Value, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(41));
    }

    [Theory]
    [InlineData("openai", 500)]
    [InlineData("anthropic", 500)]
    [InlineData("openai", 503)]
    [InlineData("anthropic", 529)]
    [InlineData("openai", 408)]
    public async Task Server_errors_are_retryable(string kind, int status)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(status, fake.ErrorBody(status == 529 ? "overloaded_error" : "api_error"));

        var failure = await FailureOf(fake);

        Assert.True(failure.Retryable);
        Assert.Null(failure.RetryAfter);
        Assert.Contains(status.ToString(CultureInfo.InvariantCulture), failure.Message, StringComparison.Ordinal);
        Assert.Single(fake.Server.LogEntries);
    }

    [Theory]
    [InlineData("openai", 400)]
    [InlineData("anthropic", 400)]
    [InlineData("openai", 401)]
    [InlineData("anthropic", 401)]
    [InlineData("anthropic", 404)]
    public async Task Other_client_errors_are_not_retryable(string kind, int status)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(status, fake.ErrorBody(status == 401 ? "authentication_error" : "invalid_request_error"),
            headers: new Dictionary<string, string> { ["Retry-After"] = "3" });

        var failure = await FailureOf(fake);

        Assert.False(failure.Retryable);
        Assert.Null(failure.RetryAfter);
        Assert.Contains(status.ToString(CultureInfo.InvariantCulture), failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(400, "content_policy_violation", "Your request was rejected by the safety system.", ProviderFailure.Caller)]
    [InlineData(400, "context_length_exceeded", "This model's maximum context length is 8192 tokens.", ProviderFailure.ContextTooLong)]
    [InlineData(400, null, "Please reduce the length of the messages: the context window is 4096.", ProviderFailure.ContextTooLong)]
    [InlineData(422, "invalid_value", "temperature: must be at most 2", ProviderFailure.Caller)]
    [InlineData(401, "invalid_api_key", "Incorrect API key provided.", ProviderFailure.Provider)]
    [InlineData(404, "model_not_found", "The model does not exist.", ProviderFailure.Provider)]
    public async Task An_openai_refusal_is_read_from_its_error_body(int status, string? code, string message, ProviderFailure expected)
    {
        using var fake = new FakeProvider("openai");
        var codeJson = code is null ? "null" : $"\"{code}\"";
        fake.Answer(status, $$$"""{"error":{"message":"{{{message}}}","type":"invalid_request_error","param":"messages","code":{{{codeJson}}}}}""");

        var failure = await FailureOf(fake);

        Assert.Equal(expected, failure.Failure);
        Assert.NotNull(failure.Refusal);
        Assert.Equal(status, failure.Refusal.Status);
        Assert.Equal(code, failure.Refusal.Code);
        Assert.Equal(message, failure.Refusal.Message);
        Assert.Equal("messages", failure.Refusal.Param);
    }

    [Fact]
    public async Task Tools_schema_and_settings_reach_an_openai_provider_on_the_wire_and_its_tool_calls_come_back()
    {
        using var fake = new FakeProvider("openai");
        fake.Answer(200, """
            {"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"model-test",
             "choices":[{"index":0,"message":{"role":"assistant","content":null,
               "tool_calls":[{"id":"call_7","type":"function","function":{"name":"lookup_order","arguments":"{\"id\":\"4471\"}"}}]},
               "finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":50,"completion_tokens":9,"total_tokens":59}}
            """);
        var request = new PersistentAgents.Contracts.V1.GatewayRequest { ToolChoice = "lookup_order", ParallelToolCalls = false };
        request.Messages.Add(new PersistentAgents.Contracts.V1.ChatMessage { Role = "user", Content = "Where is order 4471?" });
        request.Tools.Add(new PersistentAgents.Contracts.V1.ToolDefinition
        {
            Name = "lookup_order", Description = "Finds an order", Strict = true,
            ParametersJson = """{"type":"object","properties":{"id":{"type":"string"}},"required":["id"],"additionalProperties":false}""",
        });
        request.Options = new PersistentAgents.Contracts.V1.CompletionOptions { MaxOutputTokens = 100, Seed = 3, User = "end-user-9" };

        var completion = await fake.Provider.CompleteAsync(
            FakeProvider.Model, "t", GatewayChatOptions.MessagesOf(request), GatewayChatOptions.For(request), CancellationToken.None);

        var call = Assert.Single(completion.ToolCalls!);
        Assert.Equal("call_7", call.CallId);
        Assert.Equal("{\"id\":\"4471\"}", GatewayChatOptions.ToToolCall(call).ArgumentsJson);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.ToolCalls, completion.FinishReason);
        using var sent = System.Text.Json.JsonDocument.Parse(Assert.Single(fake.Server.LogEntries).RequestMessage.Body!);
        var body = sent.RootElement;
        var function = body.GetProperty("tools")[0].GetProperty("function");
        Assert.Equal("lookup_order", function.GetProperty("name").GetString());
        Assert.True(function.GetProperty("strict").GetBoolean());
        Assert.Equal("lookup_order", body.GetProperty("tool_choice").GetProperty("function").GetProperty("name").GetString());
        Assert.False(body.GetProperty("parallel_tool_calls").GetBoolean());
        Assert.Equal(3, body.GetProperty("seed").GetInt32());
        Assert.Equal("end-user-9", body.GetProperty("user").GetString());
    }

    [Theory]
    [InlineData("openai", "this is not json at all")]
    [InlineData("anthropic", "this is not json at all")]
    [InlineData("openai", """{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis""")]
    [InlineData("anthropic", """{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","te""")]
    [InlineData("openai", "<html><body>502 Bad Gateway</body></html>")]
    public async Task Garbage_or_truncated_json_is_a_failure_that_is_not_retried(string kind, string body)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(200, body);

        var failure = await FailureOf(fake);

        Assert.False(failure.Retryable);
        Assert.Contains(fake.Definition.Name, failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task An_empty_reply_is_a_failure(string kind)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(200, fake.ReplyBody(""));

        var failure = await FailureOf(fake);

        Assert.False(failure.Retryable);
        Assert.Contains("empty", failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_provider_that_cannot_be_reached_is_retryable(string kind)
    {
        // A port bound but never listening refuses connections, and no other test's server can take it meanwhile.
        using var reserved = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        reserved.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        var port = ((System.Net.IPEndPoint)reserved.LocalEndPoint!).Port;
        var definition = new ProviderDefinition
        {
            Name = $"fake-{kind}",
            Kind = kind == "openai" ? ProviderKind.Openai : ProviderKind.Anthropic,
            Endpoint = kind == "openai" ? $"http://127.0.0.1:{port}/v1" : $"http://127.0.0.1:{port}",
            ApiKeySecret = "FAKE_KEY",
            Models = [FakeProvider.Model],
        };
        using var provider = ChatClientProvider.Create(definition, FakeProvider.Key);

        var failure = await Assert.ThrowsAsync<ProviderException>(
            () => provider.CompleteAsync(FakeProvider.Model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.True(failure.Retryable, failure.ToString());
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_provider_slower_than_its_timeout_is_a_timeout_that_is_not_retried(string kind)
    {
        using var fake = new FakeProvider(kind, timeoutSeconds: 0.5);
        fake.Answer(200, fake.ReplyBody(), delay: TimeSpan.FromSeconds(3));

        var failure = await FailureOf(fake);

        Assert.Equal(ProviderFailure.Timeout, failure.Failure);
        Assert.False(failure.Retryable);
        Assert.Contains("timed out", failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task The_callers_cancellation_is_not_a_provider_failure(string kind)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(200, fake.ReplyBody(), delay: TimeSpan.FromSeconds(3));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => fake.Provider.CompleteAsync(FakeProvider.Model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), cancel.Token));
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task The_key_appears_in_no_failure(string kind)
    {
        var answers = new (int Status, string Body)[]
        {
            (401, $$$"""{"error":{"message":"Incorrect API key provided: {{{FakeProvider.Key}}}","type":"invalid_request_error"}}"""),
            (429, $$$"""{"error":{"message":"slow down {{{FakeProvider.Key}}}","type":"rate_limit_error"}}"""),
            (500, $"key {FakeProvider.Key} exploded"),
            (200, $"{{\"garbage\": \"{FakeProvider.Key}"),
        };
        foreach (var (status, body) in answers)
        {
            using var fake = new FakeProvider(kind);
            fake.Answer(status, body);

            var failure = await FailureOf(fake);

            Assert.DoesNotContain(FakeProvider.Key, failure.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("SECRET", failure.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Only_chat_client_kinds_get_a_chat_client_adapter()
    {
        var simulated = new ProviderDefinition { Name = "sim", Kind = ProviderKind.Simulated };

        Assert.Throws<ArgumentException>(() => ChatClientProvider.Create(simulated, FakeProvider.Key));
        Assert.Throws<ArgumentException>(() => ChatClientProvider.Create(
            new ProviderDefinition { Name = "a", Kind = ProviderKind.Anthropic }, " "));
    }

    private static Task<ProviderException> FailureOf(FakeProvider fake) => Assert.ThrowsAsync<ProviderException>(
        () => fake.Provider.CompleteAsync(FakeProvider.Model, "email_routing", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));
}
