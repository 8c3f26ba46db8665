using Dapr.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using PersistentAgents.Agents.Dapr;
using PersistentAgents.Agents.OpenAi;
using PersistentAgents.Agents.Rest;
using PersistentAgents.Agents.Security;
using PersistentAgents.Agents.Routing;
using PersistentAgents.Contracts;
using PersistentAgents.ServiceHosting;

namespace PersistentAgents.Agents;

/// <summary>
/// The agents service on its own (distributed mode): the public REST and gRPC API, each agent a
/// <see cref="PersistentAgentActor"/> hosted by the Dapr actor runtime (app-protocol http on the app port),
/// and the memory, learning and gateway services called by app id through the sidecar.
/// </summary>
public static class AgentsServiceHost
{
    /// <param name="overrides">Replaces registrations after the composition (tests point the Dapr endpoints at a double).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? overrides = null)
    {
        var (urls, hostArgs) = KestrelEndpoints.TakeUrls(args);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = hostArgs, ContentRootPath = AppContext.BaseDirectory });
        var appUrls = urls ?? builder.Configuration[WebHostDefaults.ServerUrlsKey] ?? $"http://localhost:{DaprComponents.AppPorts.Agents}";
        // The public gRPC port listens where the app port does (all interfaces in a container) unless told otherwise.
        var grpcUrls = builder.Configuration["grpc-urls"] ?? KestrelEndpoints.BesidePort(appUrls, DaprComponents.AppPorts.AgentsGrpc);
        KestrelEndpoints.Listen(builder, appUrls, grpcUrls);

        var services = builder.Services;
        var configuration = builder.Configuration;
        services.TryAddSingleton(TimeProvider.System);
        services.Configure<AgentLimits>(configuration.GetSection("Agents"));
        services.AddOptions<AgentRoutingOptions>().Bind(configuration.GetSection("Routing"));
        var sidecarGrpc = configuration["Dapr:GrpcEndpoint"] is { Length: > 0 } grpcEndpoint ? new Uri(grpcEndpoint) : DaprServiceInvocation.SidecarEndpointFromEnvironment();
        var callTimeout = configuration.GetValue("Agents:ServiceCallTimeout", TimeSpan.FromSeconds(60));
        var apiToken = Environment.GetEnvironmentVariable("DAPR_API_TOKEN");
        services.AddSingleton(_ => new DaprServiceInvocation(sidecarGrpc, callTimeout, apiToken));
        services.AddSingleton<IMemoryApi, MemoryApiClient>();
        services.AddSingleton<IMemoryMaintenanceApi, MemoryMaintenanceClient>();
        services.AddSingleton<ILearningApi, LearningApiClient>();
        services.AddSingleton<IGatewayApi, GatewayApiClient>();
        services.TryAddSingleton(_ => new DaprClientBuilder().UseGrpcEndpoint(sidecarGrpc.ToString()).Build());
        services.AddSingleton<IEventPublisher>(sp => new DaprEventPublisher(sp.GetRequiredService<DaprClient>()));
        services.AddActors(options =>
        {
            options.Actors.RegisterActor<PersistentAgentActor>(IPersistentAgent.ActorType);
            options.ActorIdleTimeout = configuration.GetValue("Agents:ActorIdleTimeout", TimeSpan.FromMinutes(15));
            if (configuration["Dapr:HttpEndpoint"] is { Length: > 0 } httpEndpoint)
            {
                options.HttpEndpoint = httpEndpoint;
            }
        });
        services.AddSingleton<IAgentInvoker>(sp => new ActorAgentInvoker(sp.GetRequiredService<global::Dapr.Actors.Client.IActorProxyFactory>()));
        services.AddSingleton<IApiKeyStore>(sp => new DaprApiKeyStore(sp.GetRequiredService<DaprClient>()));
        services.AddPlatformSecurity(configuration, AuthModes.Keys);
        services.AddDaprAppToken(configuration);
        services.AddAgentsPublicApi();
        services.AddServingHealthChecks();
        services.AddPlatformTelemetry(configuration, DaprComponents.Apps.Agents);
        overrides?.Invoke(services);

        var app = builder.Build();
        app.UsePlatformSecurity();
        app.MapDashboard();
        app.MapAgentsPublicApi();
        // The OpenAI-compatible routes behind the same API keys and tenant policy as the public API; the
        // gateway they call is the gateway app, through the sidecar.
        app.MapGroup("").RequireAuthorization(Tenancy.TenantPolicy).MapOpenAiCompatibleApi();
        // Only the sidecar calls these: with an app token configured, nothing else can.
        app.MapActorsHandlers().RequireDaprAppToken(configuration);
        app.MapGroup("").RequireDaprAppToken(configuration).MapAgentTasksSubscription();
        app.MapGrpcHealthChecksService();
        app.MapHealthChecks("/healthz");
        app.MapPrometheusMetrics();
        app.Lifetime.ApplicationStarted.Register(() => PlatformSecurity.LogMode(app.Services, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("PersistentAgents.Agents")));
        return app;
    }
}
