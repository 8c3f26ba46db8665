using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>One LLM provider: turns a conversation into a reply with one of its models.</summary>
/// <summary>What shape of reply the caller asked for.</summary>
public enum ReplyFormat
{
    Text,

    /// <summary>One JSON value; providers that support it are put in their JSON mode.</summary>
    Json,
}

public interface IChatModelProvider
{
    string Name { get; }

    ProviderKind Kind { get; }

    bool Simulated { get; }

    Task<ProviderCompletion> CompleteAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ReplyFormat format, CancellationToken cancellationToken);

    /// <summary>
    /// Streams the reply: text deltas, then one last chunk (<see cref="ProviderChunk.IsLast"/>) with the usage the
    /// provider reported and its quality signal. A failure before the first delta or after some throws a
    /// <see cref="ProviderException"/>; a stream that ends without its last chunk never happens.
    /// </summary>
    IAsyncEnumerable<ProviderChunk> StreamAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ReplyFormat format, CancellationToken cancellationToken);
}

/// <param name="InputTokens">
/// As the provider reported it, all input tokens (cached ones included, on every provider); null when it did not.
/// </param>
/// <param name="OutputTokens">As the provider reported it; null when it did not.</param>
/// <param name="ReportedQuality">A quality signal 0..1 the provider itself gives (simulated providers only).</param>
/// <param name="CachedInputTokens">The part of <paramref name="InputTokens"/> read from the provider's prompt cache, when reported.</param>
public sealed record ProviderCompletion(
    string Text, long? InputTokens, long? OutputTokens, double? ReportedQuality, long? CachedInputTokens = null);

/// <summary>One piece of a streamed reply.</summary>
/// <param name="TextDelta">The text that follows what was streamed so far; empty in the last chunk.</param>
/// <param name="InputTokens">Last chunk only: all input tokens as the provider reported them (cached ones included).</param>
/// <param name="OutputTokens">Last chunk only: as the provider reported them.</param>
/// <param name="ReportedQuality">Last chunk only: the provider's own quality signal (simulated providers).</param>
/// <param name="IsLast">True on the one chunk that closes a complete reply.</param>
/// <param name="CachedInputTokens">Last chunk only: the part of the input tokens read from the prompt cache.</param>
public sealed record ProviderChunk(
    string TextDelta,
    long? InputTokens = null,
    long? OutputTokens = null,
    double? ReportedQuality = null,
    bool IsLast = false,
    long? CachedInputTokens = null);

/// <summary>A provider call failed. Retryable failures are transient (429, 5xx, broken connections).</summary>
public sealed class ProviderException : Exception
{
    public ProviderException(string message, bool retryable, Exception? inner = null, TimeSpan? retryAfter = null)
        : base(message, inner)
    {
        Retryable = retryable;
        RetryAfter = retryAfter;
    }

    public bool Retryable { get; }

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
