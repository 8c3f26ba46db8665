using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace PersistentAgents.ServiceHosting;

/// <summary>
/// OpenTelemetry for every host: the platform's own sources and meters (<c>PersistentAgents.*</c>: the agent
/// loop, the gateway's GenAI spans and metrics) with ASP.NET Core, HttpClient and gRPC client
/// instrumentation; a Prometheus scrape endpoint; OTLP export when <c>Telemetry:OtlpEndpoint</c> (or the
/// standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>) is set.
/// </summary>
public static class Telemetry
{
    public const string Sources = "PersistentAgents.*";
    public const string MetricsPath = "/metrics";

    public static IServiceCollection AddPlatformTelemetry(this IServiceCollection services, IConfiguration configuration, string serviceName)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var otlp = configuration["Telemetry:OtlpEndpoint"] ?? configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            .WithTracing(tracing =>
            {
                tracing.AddSource(Sources).AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddGrpcClientInstrumentation();
                if (!string.IsNullOrEmpty(otlp))
                {
                    tracing.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
                }
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Sources).AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddPrometheusExporter();
                if (!string.IsNullOrEmpty(otlp))
                {
                    metrics.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
                }
            });
        return services;
    }

    /// <summary>The Prometheus scrape endpoint (text exposition format) at <see cref="MetricsPath"/>.</summary>
    public static WebApplication MapPrometheusMetrics(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint(MetricsPath);
        return app;
    }
}
