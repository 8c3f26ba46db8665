using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>What shape of reply the caller asked for.</summary>
public enum ReplyFormat
{
    Text,

    /// <summary>One JSON value (shaped by a schema when one is given); only models with the "json" capability serve it.</summary>
    Json,
}

/// <summary>
/// One LLM provider: turns a conversation into a reply with one of its models. The request's generation settings,
/// tools, tool choice and response format come as Microsoft.Extensions.AI <see cref="ChatOptions"/>, built once by
/// the gateway for every candidate.
/// </summary>
public interface IChatModelProvider
{
    string Name { get; }

    ProviderKind Kind { get; }

    bool Simulated { get; }

    Task<ProviderCompletion> CompleteAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken);

    /// <summary>
    /// Streams the reply: text deltas and whole tool calls, then one last chunk (<see cref="ProviderChunk.IsLast"/>)
    /// with the usage the provider reported and its quality signal. A failure before the first delta or after some
    /// throws a <see cref="ProviderException"/>; a stream that ends without its last chunk never happens.
    /// </summary>
    IAsyncEnumerable<ProviderChunk> StreamAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken);
}

/// <param name="InputTokens">
/// As the provider reported it, all input tokens (cached ones included, on every provider); null when it did not.
/// </param>
/// <param name="OutputTokens">As the provider reported it; null when it did not.</param>
/// <param name="ReportedQuality">A quality signal 0..1 the provider itself gives (simulated providers only).</param>
/// <param name="CachedInputTokens">The part of <paramref name="InputTokens"/> read from the provider's prompt cache, when reported.</param>
/// <param name="ToolCalls">The model's calls of the request's tools, in order; empty when it answered in text.</param>
/// <param name="FinishReason">Why the model stopped, as Microsoft.Extensions.AI names it; null when not reported.</param>
public sealed record ProviderCompletion(
    string Text,
    long? InputTokens,
    long? OutputTokens,
    double? ReportedQuality,
    long? CachedInputTokens = null,
    IReadOnlyList<FunctionCallContent>? ToolCalls = null,
    ChatFinishReason? FinishReason = null);

/// <summary>One piece of a streamed reply.</summary>
/// <param name="TextDelta">The text that follows what was streamed so far; empty in the last chunk.</param>
/// <param name="InputTokens">Last chunk only: all input tokens as the provider reported them (cached ones included).</param>
/// <param name="OutputTokens">Last chunk only: as the provider reported them.</param>
/// <param name="ReportedQuality">Last chunk only: the provider's own quality signal (simulated providers).</param>
/// <param name="IsLast">True on the one chunk that closes a complete reply.</param>
/// <param name="CachedInputTokens">Last chunk only: the part of the input tokens read from the prompt cache.</param>
/// <param name="ToolCall">A whole tool call (its arguments complete); <paramref name="TextDelta"/> is then empty.</param>
/// <param name="FinishReason">Last chunk only: why the model stopped, when reported.</param>
public sealed record ProviderChunk(
    string TextDelta,
    long? InputTokens = null,
    long? OutputTokens = null,
    double? ReportedQuality = null,
    bool IsLast = false,
    long? CachedInputTokens = null,
    FunctionCallContent? ToolCall = null,
    ChatFinishReason? FinishReason = null);

/// <summary>What a failed provider call means for the request.</summary>
public enum ProviderFailure
{
    /// <summary>Transient (429, 5xx, a broken connection): retried on the same provider, then the next candidate.</summary>
    Transient,

    /// <summary>No first token, or no data, within the model's limits: the next candidate at once, never a retry.</summary>
    Timeout,

    /// <summary>The provider cannot serve this call (its key, its model, an unreadable reply): the next candidate.</summary>
    Provider,

    /// <summary>The input is longer than the model's context: only a candidate with a larger window may serve it.</summary>
    ContextTooLong,

    /// <summary>The request itself was refused (a content policy, an invalid request): passed to the caller as is.</summary>
    Caller,
}

/// <summary>A provider call failed. Retryable failures are transient (429, 5xx, broken connections).</summary>
public sealed class ProviderException : Exception
{
    public ProviderException(string message, bool retryable, Exception? inner = null, TimeSpan? retryAfter = null)
        : this(message, retryable ? ProviderFailure.Transient : ProviderFailure.Provider, inner, retryAfter)
    {
    }

    public ProviderException(string message, ProviderFailure failure, Exception? inner = null, TimeSpan? retryAfter = null)
        : base(message, inner)
    {
        Failure = failure;
        RetryAfter = retryAfter;
    }

    public ProviderFailure Failure { get; }

    public bool Retryable => Failure == ProviderFailure.Transient;

    /// <summary>The provider's refusal as it gave it (HTTP status, OpenAI error type, code, message, param), when it answered one.</summary>
    public ProviderRefusal? Refusal { get; init; }

    /// <summary>How long the provider asked to wait before the next call (a 429's Retry-After).</summary>
    public TimeSpan? RetryAfter { get; }
}

/// <summary>Where API keys come from: environment variables in embedded mode, the Dapr secret store otherwise.</summary>
public interface ISecretSource
{
    string? GetSecret(string name);
}

public sealed class EnvironmentSecretSource : ISecretSource
{
    public string? GetSecret(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrWhiteSpace(value) ? null : value;
    }
}

/// <summary>An error answer of a provider, in OpenAI's terms, as it may be shown to the caller.</summary>
public sealed record ProviderRefusal(int Status, string? Type, string? Code, string? Message, string? Param);
