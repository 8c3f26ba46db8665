using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using OpenAI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// Any OpenAI-compatible chat completions API (OpenAI, Cloudflare Workers AI, Ollama, vLLM, Groq ...),
/// reached through Microsoft.Extensions.AI's OpenAI connector. Retries belong to the gateway's
/// resilience pipeline, so the SDK's own retries are off.
/// </summary>
public sealed class OpenAiCompatibleProvider : IChatModelProvider
{
    private readonly OpenAIClient _client;
    private readonly ConcurrentDictionary<string, IChatClient> _chatClients = new(StringComparer.Ordinal);

    public OpenAiCompatibleProvider(ProviderDefinition definition, string apiKey)
    {
        Name = definition.Name;
        _client = new OpenAIClient(new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(definition.Endpoint!),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(definition.TimeoutSeconds),
        });
    }

    public string Name { get; }

    public bool Simulated => false;

    public async Task<ProviderCompletion> CompleteAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken)
    {
        var chatClient = _chatClients.GetOrAdd(model.Name, m => _client.GetChatClient(m).AsIChatClient());
        ChatResponse response;
        try
        {
            response = await chatClient.GetResponseAsync(messages, cancellationToken: cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (ClientResultException e)
        {
            var retryable = e.Status is 408 or 429 or >= 500 || e.Status == 0;
            throw new ProviderException($"{Name} answered HTTP {e.Status}", retryable, e);
        }
        catch (HttpRequestException e)
        {
            throw new ProviderException($"{Name} could not be reached: {e.HttpRequestError}", retryable: true, e);
        }
        catch (Exception e) when (e is not ProviderException)
        {
            // Garbage or truncated JSON and other protocol breaks are this provider's failure, not ours.
            throw new ProviderException($"{Name} sent a reply that could not be read ({e.GetType().Name})", retryable: false, e);
        }

        var text = response.Text;
        if (string.IsNullOrEmpty(text))
        {
            throw new ProviderException($"{Name} returned an empty reply", retryable: false);
        }

        return new ProviderCompletion(text, response.Usage?.InputTokenCount, response.Usage?.OutputTokenCount, ReportedQuality: null);
    }
}
