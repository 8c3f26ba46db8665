using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
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

    /// <summary>The connector has no neutral field for the end user: it goes in OpenAI's own options.</summary>
    public override ChatOptions Prepare(ChatOptions options)
    {
        if (options.AdditionalProperties?.TryGetValue(GatewayChatOptions.EndUserKey, out var user) != true || user is not string endUser)
        {
            return options;
        }

        var prepared = options.Clone();
        prepared.RawRepresentationFactory = _ => new OpenAI.Chat.ChatCompletionOptions { EndUserId = endUser };
        return prepared;
    }

    public override ProviderException? Translate(string provider, Exception error, ProviderHttpCall call) => error switch
    {
        // Status 0: no answer at all (connection refused, reset, DNS): a transport failure, mapped by the shared part.
        ClientResultException { Status: 0, InnerException: HttpRequestException transport } =>
            new ProviderException($"{provider} could not be reached ({transport.HttpRequestError})", retryable: true, transport),
        ClientResultException { Status: 0, InnerException: { } transport } =>
            new ProviderException($"{provider} could not be reached ({transport.GetType().Name})", retryable: true, transport),
        ClientResultException { Status: 0 } => new ProviderException($"{provider} could not be reached", retryable: true),
        ClientResultException answered => ChatClientProvider.FromStatus(
            provider, answered.Status, RefusalOf(answered), call.RetryAfter ?? RetryAfterOf(answered)),
        _ => null,
    };

    /// <summary>The OpenAI error body {error: {message, type, code, param}}; null when there is none to read.</summary>
    private static ProviderRefusal? RefusalOf(ClientResultException error)
    {
        try
        {
            using var body = JsonDocument.Parse(error.GetRawResponse()?.Content ?? BinaryData.Empty);
            if (!body.RootElement.TryGetProperty("error", out var e) || e.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            return new ProviderRefusal(error.Status, StringOf(e, "type"), StringOf(e, "code"), StringOf(e, "message"), StringOf(e, "param"));
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? StringOf(JsonElement error, string name) =>
        error.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

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
