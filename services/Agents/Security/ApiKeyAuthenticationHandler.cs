using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Grpc.Core;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PersistentAgents.Agents.Rest;
using PersistentAgents.Contracts;

namespace PersistentAgents.Agents.Security;

/// <summary>
/// Authenticates a caller by API key (<c>Authorization: Bearer</c> or <c>X-Api-Key</c>): the key's hash is
/// looked up in the <see cref="IApiKeyStore"/> or matched against the configured admin key, and the caller
/// gets the key's tenant, scope and id as claims. Without keys (<c>Auth:Mode=none</c>) every caller is the
/// default tenant with the admin scope.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IApiKeyStore keys,
    IOptions<PlatformAuthOptions> auth) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    /// <summary>The configured admin key's id in claims and rate limits (it has no record).</summary>
    public const string ConfiguredAdminKeyId = "configured-admin";

    /// <summary>Browsers cannot set headers on an EventSource, so the dashboard's stream alone also takes the key as a query parameter.</summary>
    public const string DashboardStreamPath = "/dashboard/events";

    /// <summary>The caller's rate limit, for the limiter (what the key says, else the host's default).</summary>
    internal const string RequestsPerMinuteClaim = "persistent_agents/requests_per_minute";

    private const string NoneKeyId = "none";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var settings = auth.Value;
        if (!settings.KeysRequired)
        {
            return Success(Tenancy.DefaultTenant, Tenancy.AdminScope, NoneKeyId, settings.RequestsPerMinute);
        }

        if (PresentedKey() is not { } secret)
        {
            return AuthenticateResult.NoResult();
        }

        var hash = ApiKeyFormat.HashOf(secret);
        if (settings.AdminKey is { Length: > 0 } adminKey
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(hash), Encoding.ASCII.GetBytes(ApiKeyFormat.HashOf(adminKey))))
        {
            return Success(settings.AdminTenant, Tenancy.AdminScope, ConfiguredAdminKeyId, settings.RequestsPerMinute);
        }

        var record = await keys.FindByHashAsync(hash, Context.RequestAborted);
        if (record is null)
        {
            return AuthenticateResult.Fail("authorization: the API key is not known");
        }

        if (record.RevokedAt is { } revoked)
        {
            return AuthenticateResult.Fail($"authorization: the API key {record.Id} was revoked at {revoked:u}");
        }

        return Success(record.Tenant, record.Scope, record.Id, record.RequestsPerMinute > 0 ? record.RequestsPerMinute : settings.RequestsPerMinute);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        var message = result.Failure?.Message ?? "authorization: an API key is required (header 'Authorization: Bearer <key>' or 'X-Api-Key: <key>')";
        await RestError.RefuseAsync(Context, StatusCode.Unauthenticated, message);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        RestError.RefuseAsync(Context, StatusCode.PermissionDenied, "authorization: this route needs a key with the admin scope");

    private string? PresentedKey()
    {
        var headers = Request.Headers;
        if (headers.Authorization.ToString() is { Length: > 7 } authorization && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization[7..].Trim();
        }

        if (headers["X-Api-Key"].ToString() is { Length: > 0 } apiKey)
        {
            return apiKey.Trim();
        }

        return Request.Path.Equals(DashboardStreamPath, StringComparison.Ordinal) && Request.Query["access_token"].ToString() is { Length: > 0 } token
            ? token
            : null;
    }

    private static AuthenticateResult Success(string tenant, string scope, string keyId, int requestsPerMinute)
    {
        var identity = new ClaimsIdentity(
            [
                new Claim(Tenancy.TenantClaim, tenant),
                new Claim(Tenancy.ScopeClaim, scope),
                new Claim(Tenancy.KeyIdClaim, keyId),
                new Claim(RequestsPerMinuteClaim, requestsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ],
            SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }
}
