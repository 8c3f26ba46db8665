using System.Security.Cryptography;
using System.Text;

namespace PersistentAgents.Agents.Security;

/// <summary>A stored API key: its hash, never the secret.</summary>
public sealed record ApiKeyRecord(
    string Id,
    string Hash,
    string Tenant,
    string Name,
    string Scope,
    string Prefix,
    int RequestsPerMinute,
    DateTimeOffset CreatedAt,
    DateTimeOffset? RevokedAt = null);

/// <summary>Where API keys are kept: SQLite in embedded mode, a Dapr state store in distributed mode.</summary>
public interface IApiKeyStore
{
    Task AddAsync(ApiKeyRecord key, CancellationToken cancellationToken);

    Task<ApiKeyRecord?> FindByHashAsync(string hash, CancellationToken cancellationToken);

    Task<IReadOnlyList<ApiKeyRecord>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Marks the key revoked (once; a second revoke keeps the first time). Null when no key has the id.</summary>
    Task<ApiKeyRecord?> RevokeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken);
}

/// <summary>
/// The key format: <c>pa_</c> and 32 random bytes in base64url. With that much entropy a guess is hopeless,
/// so one SHA-256 of the key is a safe stored form (a slow password hash protects low-entropy secrets,
/// which these are not) and it lets a request be checked with one lookup by hash.
/// </summary>
public static class ApiKeyFormat
{
    public const string SecretPrefix = "pa_";

    /// <summary>Characters of the secret kept in the record (the "pa_" and 8 more) to recognise a key in a listing.</summary>
    public const int ShownPrefixLength = 11;

    public static string NewSecret() => SecretPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    public static string HashOf(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
