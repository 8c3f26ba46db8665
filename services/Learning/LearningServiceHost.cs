using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PersistentAgents.Analytics;
using PersistentAgents.Contracts;
using PersistentAgents.Learning.Dapr;
using PersistentAgents.ServiceHosting;

namespace PersistentAgents.Learning;

/// <summary>
/// The learning service on its own (distributed mode): its gRPC API for the agents service, its state on
/// the <c>learning-state</c> store, and <c>interaction-completed</c> events from <c>agent-pubsub</c> through
/// its sidecar's app callback.
/// </summary>
public static class LearningServiceHost
{
    /// <param name="overrides">Replaces registrations after the composition (tests point the Dapr client at a double).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? overrides = null)
    {
        var builder = GrpcServiceHost.CreateBuilder(args, DaprComponents.AppPorts.Learning, DaprComponents.Apps.Learning);
        var services = builder.Services;
        services.Configure<LearningOptions>(builder.Configuration.GetSection("Learning"));
        services.AddDaprLearningState();
        services.AddSingleton<IEventPublisher>(sp => new DaprEventPublisher(sp.GetRequiredService<global::Dapr.Client.DaprClient>()));
        services.AddSingleton<ILearningApi>(sp => new LearningService(
            sp.GetRequiredService<ILearningStateStore>(), sp.GetRequiredService<IOptions<LearningOptions>>(), Random.Shared, TimeProvider.System,
            sp.GetRequiredService<IEventPublisher>()));
        // Analytics: the app callback also writes each outcome to PostgreSQL when Analytics:ConnectionString is set.
        services.AddPostgresAnalytics(builder.Configuration);
        overrides?.Invoke(services);

        var app = builder.Build();
        app.MapGrpcService<LearningGrpcService>().RequireDaprAppToken(app.Configuration);
        app.MapGrpcService<LearningAppCallback>().RequireDaprAppToken(app.Configuration);
        app.MapServiceDefaults();
        return app;
    }
}
