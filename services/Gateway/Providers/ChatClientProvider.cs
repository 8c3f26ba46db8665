using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// A real provider reached through a Microsoft.Extensions.AI <see cref="IChatClient"/>: the OpenAI connector for
/// kind <c>openai</c> (OpenAI, Cloudflare Workers AI, Ollama, vLLM, Groq ...) and the official Anthropic SDK for
/// kind <c>anthropic</c> (the Messages API). The kind decides how clients are made and how its SDK's failures
/// read; everything else — usage, empty replies, streaming, the mapping of transport failures — is shared.
/// Retries belong to the gateway's resilience pipeline, so the SDKs' own retries are off.
/// </summary>
public sealed class ChatClientProvider : IChatModelProvider, IDisposable
{
    private readonly ChatClientKind _kind;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<string, IChatClient> _chatClients = new(StringComparer.Ordinal);

    private ChatClientProvider(string name, ProviderKind kind, ChatClientKind chatClientKind, HttpClient http)
    {
        Name = name;
        Kind = kind;
        _kind = chatClientKind;
        _http = http;
    }

    public string Name { get; }

    /// <summary><see cref="ProviderKind.Openai"/> or <see cref="ProviderKind.Anthropic"/>.</summary>
    public ProviderKind Kind { get; }

    public bool Simulated => false;

    /// <summary>The adapter for a catalog provider of kind openai or anthropic, with its API key.</summary>
    /// <exception cref="ArgumentException">The provider is of another kind, or the key is empty.</exception>
    public static ChatClientProvider Create(ProviderDefinition definition, string apiKey)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentException.ThrowIfNullOrWhiteSpace(apiKey);
        var http = ProviderHttp.CreateClient();
        try
        {
            ChatClientKind kind = definition.Kind switch
            {
                ProviderKind.Openai => new OpenAiChatClientKind(definition, apiKey, http),
                ProviderKind.Anthropic => new AnthropicChatClientKind(definition, apiKey, http),
                _ => throw new ArgumentException($"provider {definition.Name}: kind {definition.Kind} is not served by a chat client", nameof(definition)),
            };
            return new ChatClientProvider(definition.Name, definition.Kind, kind, http);
        }
        catch
        {
            http.Dispose();
            throw;
        }
    }

    public async Task<ProviderCompletion> CompleteAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        var chatClient = ClientFor(model);
        var call = ProviderHttpCall.Begin();
        ChatResponse response;
        try
        {
            response = await chatClient.GetResponseAsync(messages, _kind.Prepare(options), cancellationToken);
        }
        catch (Exception e) when (Translate(e, call, cancellationToken) is { } failure)
        {
            throw failure;
        }

        var text = response.Text;
        var toolCalls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
        if (string.IsNullOrWhiteSpace(text) && toolCalls.Count == 0)
        {
            throw new ProviderException($"{Name} returned an empty reply", retryable: false);
        }

        var usage = response.Usage;
        return new ProviderCompletion(
            text, usage?.InputTokenCount, usage?.OutputTokenCount, ReportedQuality: null, usage?.CachedInputTokenCount, toolCalls, response.FinishReason);
    }

    /// <summary>
    /// The reply as the provider streams it. A stream that breaks (an error, a dropped connection, or an end without
    /// the provider's finish) throws a <see cref="ProviderException"/>, also after deltas were yielded.
    /// </summary>
    public async IAsyncEnumerable<ProviderChunk> StreamAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ChatOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        var chatClient = ClientFor(model);
        var call = ProviderHttpCall.Begin();
        IAsyncEnumerator<ChatResponseUpdate> updates;
        try
        {
            updates = chatClient.GetStreamingResponseAsync(messages, _kind.Prepare(options), cancellationToken).GetAsyncEnumerator(cancellationToken);
        }
        catch (Exception e) when (Translate(e, call, cancellationToken) is { } failure)
        {
            throw failure;
        }

        var anyText = false;
        ChatFinishReason? finished = null;
        UsageDetails? usage = null;
        await using (updates)
        {
            while (true)
            {
                ChatResponseUpdate update;
                try
                {
                    call.Resume();
                    if (!await updates.MoveNextAsync())
                    {
                        break;
                    }

                    update = updates.Current;
                }
                catch (Exception e) when (Translate(e, call, cancellationToken) is { } failure)
                {
                    throw failure;
                }

                finished = update.FinishReason ?? finished;
                foreach (var content in update.Contents)
                {
                    if (content is UsageContent reported)
                    {
                        // Providers report usage once, or cumulatively: the last report is the whole call's.
                        usage = reported.Details;
                    }
                    else if (content is FunctionCallContent toolCall)
                    {
                        // The connectors assemble a call's argument fragments and hand it over whole.
                        anyText = true;
                        yield return new ProviderChunk("", ToolCall: toolCall);
                    }
                }

                var delta = update.Text;
                if (!string.IsNullOrEmpty(delta))
                {
                    anyText = true;
                    yield return new ProviderChunk(delta);
                }
            }
        }

        if (finished is null)
        {
            throw new ProviderException(
                anyText ? $"{Name} broke off the stream before the reply was complete" : $"{Name} ended the stream without a reply",
                retryable: true);
        }

        if (!anyText)
        {
            throw new ProviderException($"{Name} returned an empty reply", retryable: false);
        }

        yield return new ProviderChunk(
            "", usage?.InputTokenCount, usage?.OutputTokenCount, ReportedQuality: null, IsLast: true, usage?.CachedInputTokenCount, FinishReason: finished);
    }

    public void Dispose()
    {
        foreach (var client in _chatClients.Values)
        {
            client.Dispose();
        }

        _kind.Dispose();
        _http.Dispose();
    }

    private IChatClient ClientFor(ModelDefinition model) => _chatClients.GetOrAdd(model.Name, _kind.CreateClient);

    /// <summary>
    /// The provider failure an SDK exception stands for; null for what must pass unchanged (our caller's
    /// cancellation, and failures already translated). Messages carry the status and the provider's error type,
    /// never a response body or a request header, so a key cannot leak through them.
    /// </summary>
    private ProviderException? Translate(Exception error, ProviderHttpCall call, CancellationToken cancellationToken)
    {
        if (error is ProviderException || (error is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            return null;
        }

        return _kind.Translate(Name, error, call) ?? error switch
        {
            OperationCanceledException or TimeoutException => new ProviderException($"{Name} timed out", ProviderFailure.Timeout, error),
            HttpRequestException { StatusCode: { } status } => FromStatus(Name, (int)status, refusal: null, call.RetryAfter),
            HttpRequestException http => new ProviderException($"{Name} could not be reached ({http.HttpRequestError})", retryable: true, error),
            IOException => new ProviderException($"{Name} broke the connection", retryable: true, error),
            JsonException => new ProviderException($"{Name} sent a reply that is not valid JSON", retryable: false, error),
            _ when call.Status >= 400 => FromStatus(Name, call.Status.Value, refusal: null, call.RetryAfter),
            _ => new ProviderException($"{Name} sent a reply that could not be read ({error.GetType().Name})", retryable: false, error),
        };
    }

    /// <summary>
    /// An HTTP error answer. 429 (with its Retry-After), 408 and 5xx are transient. A context-length refusal may be
    /// served by a model with a larger window. A content-policy refusal and any other 400, 413 or 422 are the
    /// caller's: the refusal goes back to them as the provider gave it. 401, 403 and 404 are this provider's (its
    /// key, its model), so another candidate is tried. <paramref name="refusal"/> is the error body as read, if any.
    /// </summary>
    internal static ProviderException FromStatus(string provider, int status, ProviderRefusal? refusal, TimeSpan? retryAfter)
    {
        var detail = IsSafeIdentifier(refusal?.Code) ? $" ({refusal!.Code})" : IsSafeIdentifier(refusal?.Type) ? $" ({refusal!.Type})" : "";
        var message = $"{provider} answered HTTP {status}{detail}";
        if (status < 400)
        {
            return new ProviderException($"{provider} sent a reply that could not be read (HTTP {status})", retryable: false);
        }

        if (status is 408 or 429 or >= 500)
        {
            return new ProviderException(message, ProviderFailure.Transient, inner: null, retryAfter);
        }

        var failure = status is 400 or 413 or 422 ? (IsContextLength(refusal) ? ProviderFailure.ContextTooLong : ProviderFailure.Caller) : ProviderFailure.Provider;
        return new ProviderException(message, failure) { Refusal = (refusal ?? new ProviderRefusal(status, null, null, null, null)) with { Status = status } };
    }

    /// <summary>OpenAI's code, or the wording OpenAI-compatible servers and Anthropic use for an input past the window.</summary>
    private static bool IsContextLength(ProviderRefusal? refusal) =>
        refusal is not null
        && (refusal.Code is "context_length_exceeded" or "string_above_max_length"
            || (refusal.Message is { } text
                && (text.Contains("context length", StringComparison.OrdinalIgnoreCase)
                    || text.Contains("context window", StringComparison.OrdinalIgnoreCase)
                    || text.Contains("prompt is too long", StringComparison.OrdinalIgnoreCase))));

    private static bool IsSafeIdentifier(string? value) =>
        value is { Length: > 0 and <= 64 } && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');
}

/// <summary>The per-kind part of a <see cref="ChatClientProvider"/>: its SDK's client and how its SDK's failures read.</summary>
internal abstract class ChatClientKind : IDisposable
{
    public abstract IChatClient CreateClient(string model);

    /// <summary>The gateway's options as this kind's connector reads them (e.g. the end user id OpenAI takes apart).</summary>
    public virtual ChatOptions Prepare(ChatOptions options) => options;

    /// <summary>The provider failure <paramref name="error"/> stands for, or null to leave it to the shared mapping.</summary>
    public abstract ProviderException? Translate(string provider, Exception error, ProviderHttpCall call);

    /// <summary>Releases the SDK client (the provider owns and disposes the HttpClient).</summary>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}
