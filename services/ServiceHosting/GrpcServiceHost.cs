using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace PersistentAgents.ServiceHosting;

/// <summary>
/// The web host of a service that Dapr reaches with app-protocol grpc (memory, learning, gateway): cleartext
/// HTTP/2 only, since its sidecar and its callers speak nothing else, with server reflection and
/// grpc.health.v1 for probes. It listens on the standard ASP.NET Core URLs setting (<c>--urls</c>,
/// <c>ASPNETCORE_URLS</c>) or, without one, on its distributed-mode port on localhost.
/// </summary>
public static class GrpcServiceHost
{
    /// <param name="serviceName">The service's name in traces and metrics (its Dapr app id).</param>
    public static WebApplicationBuilder CreateBuilder(string[] args, int defaultPort, string serviceName)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.WebHost.UseUrls($"http://localhost:{defaultPort}");
        }

        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc(options => options.EnableDetailedErrors = false);
        builder.Services.AddGrpcReflection();
        builder.Services.AddServingHealthChecks();
        builder.Services.AddDaprAppToken(builder.Configuration);
        // Prometheus scrapes HTTP/1.1, which this host does not serve: its telemetry leaves by OTLP.
        builder.Services.AddPlatformTelemetry(builder.Configuration, serviceName);
        return builder;
    }

    /// <summary>grpc.health.v1 (and the health-check middleware) answering "serving" from the start.</summary>
    public static IServiceCollection AddServingHealthChecks(this IServiceCollection services)
    {
        // With no check registered the gRPC health service answers "unknown"; a process that serves is up.
        services.AddGrpcHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy());
        // The first result is published at start rather than after the default 5 s, so a readiness probe does
        // not read "unknown" from a service that is up.
        services.Configure<HealthCheckPublisherOptions>(options => options.Delay = TimeSpan.Zero);
        return services;
    }

    /// <summary>Maps reflection and health beside the service's own gRPC services; health stays open to probes.</summary>
    public static WebApplication MapServiceDefaults(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcReflectionService().RequireDaprAppToken(app.Configuration);
        app.MapGrpcHealthChecksService();
        return app;
    }
}
