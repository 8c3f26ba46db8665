using Anthropic;
using Anthropic.Core;
using Anthropic.Exceptions;
using System.Text.Json;
using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// Kind <c>anthropic</c>: the Messages API through the official Anthropic SDK and its <see cref="IChatClient"/>.
/// Anthropic reports cache reads and cache writes apart from <c>input_tokens</c>; the SDK's chat client adds them
/// up into the input token count and reports cache reads as cached input tokens, so usage reads as OpenAI's does.
/// </summary>
internal sealed class AnthropicChatClientKind : ChatClientKind
{
    /// <summary>The Messages API requires max_tokens; the catalog has no per-model limit yet.</summary>
    private const int DefaultMaxOutputTokens = 4096;

    private readonly AnthropicClient _client;

    public AnthropicChatClientKind(ProviderDefinition definition, string apiKey, HttpClient http)
    {
        _client = new AnthropicClient(new ClientOptions
        {
            // Set explicitly, so the SDK reads neither ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN nor ANTHROPIC_BASE_URL.
            ApiKey = apiKey,
            BaseUrl = (definition.Endpoint ?? ProviderDefinition.DefaultAnthropicEndpoint).TrimEnd('/'),
            MaxRetries = 0,
            Timeout = TimeSpan.FromSeconds(definition.TimeoutSeconds),
            HttpClient = http,
        });
    }

    public override IChatClient CreateClient(string model) => _client.AsIChatClient(model, DefaultMaxOutputTokens);

    public override ProviderException? Translate(string provider, Exception error, ProviderHttpCall call) => error switch
    {
        AnthropicApiException answered => ChatClientProvider.FromStatus(
            provider, (int)answered.StatusCode, new ProviderRefusal((int)answered.StatusCode, TypeOf(answered), Code: null, answered.Message, Param: null), call.RetryAfter),

        // An error event inside a stream that had started with 200.
        AnthropicSseException streamed => new ProviderException(
            $"{provider} reported an error in the stream ({TypeOf(streamed) ?? "of no known type"})",
            retryable: TypeOf(streamed) is "overloaded_error" or "api_error" or "rate_limit_error" or "timeout_error"),
        AnthropicIOException broken => new ProviderException(
            $"{provider} could not be reached ({broken.InnerException?.HttpRequestError.ToString() ?? "connection failed"})", retryable: true, broken),
        AnthropicInvalidDataException => new ProviderException($"{provider} sent a reply that could not be read", retryable: false, error),
        _ => null,
    };

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _client.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>error.type of the error body (a short identifier, checked before it goes into a message).</summary>
    private static string? TypeOf(AnthropicServiceException error) =>
        error.Type is { Json.ValueKind: JsonValueKind.String } type ? type.Json.GetString() : null;
}
