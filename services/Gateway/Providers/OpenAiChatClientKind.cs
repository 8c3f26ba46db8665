using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using OpenAI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// Kind <c>openai</c>: any OpenAI-compatible chat completions API through Microsoft.Extensions.AI's OpenAI connector.
/// Its usage counts cached tokens inside <c>prompt_tokens</c> already (and apart in <c>cached_tokens</c>), and its
/// streams ask for usage in a last event (<c>stream_options.include_usage</c>, set by the OpenAI SDK).
/// </summary>
internal sealed class OpenAiChatClientKind : ChatClientKind
{
    private readonly OpenAIClient _client;

    public OpenAiChatClientKind(ProviderDefinition definition, string apiKey, HttpClient http)
    {
        _client = new OpenAIClient(new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(definition.Endpoint!),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(definition.TimeoutSeconds),
            Transport = new HttpClientPipelineTransport(http),
        });
    }

    public override IChatClient CreateClient(string model) => _client.GetChatClient(model).AsIChatClient();

    public override ProviderException? Translate(string provider, Exception error, ProviderHttpCall call) => error switch
    {
        // Status 0: no answer at all (connection refused, reset, DNS): a transport failure, mapped by the shared part.
        ClientResultException { Status: 0, InnerException: HttpRequestException transport } =>
            new ProviderException($"{provider} could not be reached ({transport.HttpRequestError})", retryable: true, transport),
        ClientResultException { Status: 0, InnerException: { } transport } =>
            new ProviderException($"{provider} could not be reached ({transport.GetType().Name})", retryable: true, transport),
        ClientResultException { Status: 0 } => new ProviderException($"{provider} could not be reached", retryable: true),
        ClientResultException answered => ChatClientProvider.FromStatus(
            provider, answered.Status, ErrorTypeOf(answered), call.RetryAfter ?? RetryAfterOf(answered)),
        _ => null,
    };

    private static string? ErrorTypeOf(ClientResultException error)
    {
        try
        {
            using var body = System.Text.Json.JsonDocument.Parse(error.GetRawResponse()?.Content ?? BinaryData.Empty);
            return body.RootElement.TryGetProperty("error", out var e) && e.ValueKind == System.Text.Json.JsonValueKind.Object
                   && e.TryGetProperty("type", out var type) && type.ValueKind == System.Text.Json.JsonValueKind.String
                ? type.GetString()
                : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static TimeSpan? RetryAfterOf(ClientResultException error)
    {
        var headers = error.GetRawResponse()?.Headers;
        if (headers is null)
        {
            return null;
        }

        using var probe = new HttpResponseMessage();
        foreach (var (name, value) in headers)
        {
            if (name.StartsWith("retry-after", StringComparison.OrdinalIgnoreCase))
            {
                probe.Headers.TryAddWithoutValidation(name, value);
            }
        }

        return RetryAfterHeader.Parse(probe.Headers, DateTimeOffset.UtcNow);
    }
}
