using Dapr.Client;
using PersistentAgents.Contracts;
using PersistentAgents.Gateway.Providers;

namespace PersistentAgents.Gateway.Dapr;

/// <summary>
/// Provider API keys from the <c>agent-secrets</c> store through the sidecar. Keys are read once per name,
/// when the providers are activated at the first request, and kept: a key that is missing is not asked for
/// again until the service restarts, as with environment variables in embedded mode.
/// </summary>
public sealed class DaprSecretSource(DaprClient dapr, string storeName = DaprComponents.Secrets) : ISecretSource
{
    private readonly Dictionary<string, string?> _read = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public string? GetSecret(string name)
    {
        lock (_lock)
        {
            if (!_read.TryGetValue(name, out var value))
            {
                // ISecretSource is synchronous: it is read while the provider set is built, off any request's
                // synchronization context, so blocking on the sidecar once per name is safe.
                value = _read[name] = ReadAsync(name).GetAwaiter().GetResult();
            }

            return value;
        }
    }

    private async Task<string?> ReadAsync(string name)
    {
        try
        {
            var secret = await dapr.GetSecretAsync(storeName, name);
            return secret.TryGetValue(name, out var value) && !string.IsNullOrWhiteSpace(value) ? value : null;
        }
        catch (global::Dapr.DaprException)
        {
            // Stores answer an unknown name with an error: the provider simply has no key.
            return null;
        }
    }
}
