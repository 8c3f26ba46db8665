using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace PersistentAgents.ServiceHosting;

/// <summary>
/// Dapr's app API token (sidecar → app): when <c>APP_API_TOKEN</c> (or <c>Dapr:AppApiToken</c>) is set, the
/// sidecar sends it as <c>dapr-api-token</c> on every call it makes to the app, and the app refuses calls
/// without it, so that only its sidecar can reach what only the sidecar should call. Unset, nothing is
/// required (local runs without tokens). The other direction, <c>DAPR_API_TOKEN</c> (app → sidecar), is sent
/// by the Dapr clients.
/// </summary>
public static class DaprAppToken
{
    private const string PolicyName = "Dapr";

    public static string? Of(IConfiguration configuration) =>
        configuration?["Dapr:AppApiToken"] is { Length: > 0 } configured ? configured
        : Environment.GetEnvironmentVariable("APP_API_TOKEN") is { Length: > 0 } fromEnvironment ? fromEnvironment
        : null;

    public static IServiceCollection AddDaprAppToken(this IServiceCollection services, IConfiguration configuration)
    {
        if (Of(configuration) is { } token)
        {
            services.AddAuthentication().AddDapr(options => options.Token = token);
            services.AddAuthorization(options => options.AddDapr(PolicyName));
        }

        return services;
    }

    /// <summary>Requires the app token on these endpoints when one is configured.</summary>
    public static TBuilder RequireDaprAppToken<TBuilder>(this TBuilder endpoints, IConfiguration configuration)
        where TBuilder : IEndpointConventionBuilder =>
        Of(configuration) is null ? endpoints : endpoints.RequireAuthorization(PolicyName);
}
