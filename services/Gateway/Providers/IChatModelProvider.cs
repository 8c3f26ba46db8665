using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>One LLM provider: turns a conversation into a reply with one of its models.</summary>
public interface IChatModelProvider
{
    string Name { get; }

    bool Simulated { get; }

    Task<ProviderCompletion> CompleteAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken);
}

/// <param name="InputTokens">As the provider reported it; null when it did not.</param>
/// <param name="OutputTokens">As the provider reported it; null when it did not.</param>
/// <param name="ReportedQuality">A quality signal 0..1 the provider itself gives (simulated providers only).</param>
public sealed record ProviderCompletion(string Text, long? InputTokens, long? OutputTokens, double? ReportedQuality);

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
