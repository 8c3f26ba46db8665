using Dapr.Client;
using PersistentAgents.Agents.Security;
using PersistentAgents.Contracts;

namespace PersistentAgents.Agents.Dapr;

/// <summary>
/// API keys on the agents' state store: one item per key under <c>api-keys/hash/{hash}</c> (a request is
/// checked with one read) and an index <c>api-keys/index</c> of ids and hashes for listing and revoking,
/// changed under its ETag (first-write) and retried when another replica changed it in between.
/// </summary>
public sealed class DaprApiKeyStore(DaprClient dapr, string storeName = DaprComponents.ActorState) : IApiKeyStore
{
    private const string IndexKey = "api-keys/index";
    private const int MaxAttempts = 16;
    private static readonly StateOptions FirstWrite = new() { Concurrency = ConcurrencyMode.FirstWrite };

    public static string KeyOf(string hash) => $"api-keys/hash/{hash}";

    public async Task AddAsync(ApiKeyRecord key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        // The key first: an index entry must never point at nothing.
        await dapr.SaveStateAsync(storeName, KeyOf(key.Hash), key, cancellationToken: cancellationToken);
        for (var attempt = 1; ; attempt++)
        {
            var (index, etag) = await dapr.GetStateAndETagAsync<List<IndexEntry>?>(storeName, IndexKey, cancellationToken: cancellationToken);
            List<IndexEntry> changed = [.. index ?? [], new IndexEntry(key.Id, key.Hash)];
            if (await dapr.TrySaveStateAsync(storeName, IndexKey, changed, etag ?? "", FirstWrite, cancellationToken: cancellationToken))
            {
                return;
            }

            if (attempt == MaxAttempts)
            {
                throw new InvalidOperationException($"the API key index kept changing under {MaxAttempts} attempts to add key {key.Id}");
            }
        }
    }

    public Task<ApiKeyRecord?> FindByHashAsync(string hash, CancellationToken cancellationToken) =>
        dapr.GetStateAsync<ApiKeyRecord?>(storeName, KeyOf(hash), cancellationToken: cancellationToken);

    public async Task<IReadOnlyList<ApiKeyRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var (index, _) = await dapr.GetStateAndETagAsync<List<IndexEntry>?>(storeName, IndexKey, cancellationToken: cancellationToken);
        if (index is not { Count: > 0 })
        {
            return [];
        }

        var items = await dapr.GetBulkStateAsync<ApiKeyRecord?>(storeName, [.. index.Select(e => KeyOf(e.Hash))], parallelism: 4, cancellationToken: cancellationToken);
        return [.. items.Select(i => i.Value).OfType<ApiKeyRecord>()];
    }

    public async Task<ApiKeyRecord?> RevokeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var (index, _) = await dapr.GetStateAndETagAsync<List<IndexEntry>?>(storeName, IndexKey, cancellationToken: cancellationToken);
        if (index?.FirstOrDefault(e => e.Id == id) is not { } entry)
        {
            return null;
        }

        for (var attempt = 1; ; attempt++)
        {
            var (record, etag) = await dapr.GetStateAndETagAsync<ApiKeyRecord?>(storeName, KeyOf(entry.Hash), cancellationToken: cancellationToken);
            if (record is null || record.RevokedAt is not null)
            {
                return record;
            }

            var revoked = record with { RevokedAt = at };
            if (await dapr.TrySaveStateAsync(storeName, KeyOf(entry.Hash), revoked, etag, FirstWrite, cancellationToken: cancellationToken))
            {
                return revoked;
            }

            if (attempt == MaxAttempts)
            {
                throw new InvalidOperationException($"API key {id} kept changing under {MaxAttempts} attempts to revoke it");
            }
        }
    }

    private sealed record IndexEntry(string Id, string Hash);
}
