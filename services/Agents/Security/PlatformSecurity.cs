using System.Globalization;
using System.Threading.RateLimiting;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PersistentAgents.Agents.Rest;
using PersistentAgents.Contracts;

namespace PersistentAgents.Agents.Security;

/// <summary>
/// API-key authentication, the tenant and admin policies and per-key rate limits, as both hosts of the
/// public API (the embedded host and the agents service) use them. The host registers its
/// <see cref="IApiKeyStore"/>.
/// </summary>
public static class PlatformSecurity
{
    public static IServiceCollection AddPlatformSecurity(this IServiceCollection services, IConfiguration configuration, string defaultMode)
    {
        services.AddOptions<PlatformAuthOptions>()
            .Configure(o => o.Mode = defaultMode)
            .Bind(configuration.GetSection("Auth"))
            .Validate(o => o.Mode is AuthModes.Keys or AuthModes.None, "Auth:Mode: must be 'keys' or 'none'")
            .Validate(o => o.RequestsPerMinute > 0, "Auth:RequestsPerMinute: must be a positive number")
            .Validate(o => o.AdminKey is null || o.AdminKey.Length >= 16, "Auth:AdminKey: must be at least 16 characters")
            .Validate(o => CompleteRequestValidator.IsValidName(o.AdminTenant), "Auth:AdminTenant: must be 1-64 of a-z, 0-9, '-' and '_'")
            .ValidateOnStart();
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Tenancy.TenantPolicy, policy => policy.RequireClaim(Tenancy.TenantClaim))
            .AddPolicy(Tenancy.AdminPolicy, policy => policy.RequireClaim(Tenancy.ScopeClaim, Tenancy.AdminScope));
        services.AddRateLimiter(options =>
        {
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(PartitionOf);
            options.OnRejected = RejectAsync;
        });
        return services;
    }

    /// <summary>Authentication then rate limiting, ahead of everything that answers a caller.</summary>
    public static WebApplication UsePlatformSecurity(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseAuthentication();
        app.UseRateLimiter();
        return app;
    }

    /// <summary>Logs at start whether keys are required, so that a host open to anyone says so.</summary>
    public static void LogMode(IServiceProvider services, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(services);
        var auth = services.GetRequiredService<IOptions<PlatformAuthOptions>>().Value;
        if (!auth.KeysRequired)
        {
            logger.LogWarning("Authentication is OFF (Auth:Mode=none): every caller acts as tenant '{Tenant}' with the admin scope and no rate limit. " +
                "For anything but local use start with --Auth:Mode keys and an admin key (Auth__AdminKey)", Tenancy.DefaultTenant);
        }
        else if (string.IsNullOrEmpty(auth.AdminKey))
        {
            logger.LogInformation("API keys required; no Auth:AdminKey configured, so keys are managed with an admin key created earlier");
        }
        else
        {
            logger.LogInformation("API keys required; the configured admin key acts in tenant '{Tenant}'; {Limit} requests per minute per key by default",
                auth.AdminTenant, auth.RequestsPerMinute);
        }
    }

    // One token bucket per key, as large as a minute's allowance and refilled evenly over the minute.
    // Callers without a key are refused by authorization, and Auth:Mode=none has no keys to limit.
    private static RateLimitPartition<string> PartitionOf(HttpContext context)
    {
        var keyId = context.User.FindFirst(Tenancy.KeyIdClaim)?.Value;
        if (keyId is null || !context.RequestServices.GetRequiredService<IOptions<PlatformAuthOptions>>().Value.KeysRequired
            || !int.TryParse(context.User.FindFirst(ApiKeyAuthenticationHandler.RequestsPerMinuteClaim)?.Value, CultureInfo.InvariantCulture, out var perMinute))
        {
            return RateLimitPartition.GetNoLimiter("unlimited");
        }

        // Whole tokens each second when the minute divides evenly, else one token every 1/perMinute minute.
        var (tokens, period) = perMinute % 60 == 0 ? (perMinute / 60, TimeSpan.FromSeconds(1)) : (1, TimeSpan.FromMinutes(1) / perMinute);
        return RateLimitPartition.GetTokenBucketLimiter($"{keyId}:{perMinute}", _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = perMinute,
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = period,
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        var message = $"rate limit: key {context.User.FindFirst(Tenancy.KeyIdClaim)?.Value} allows " +
            $"{context.User.FindFirst(ApiKeyAuthenticationHandler.RequestsPerMinuteClaim)?.Value} requests per minute; retry after {seconds} s";
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await RestError.RefuseAsync(context, StatusCode.ResourceExhausted, message);
    }
}
