using PersistentAgents.Embeddings;
using Dapr.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using PersistentAgents.Contracts;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Dapr;
using PersistentAgents.Gateway.Providers;
using PersistentAgents.ServiceHosting;

namespace PersistentAgents.Gateway;

/// <summary>
/// The gateway on its own (distributed mode): its gRPC API for the agents service, provider keys from the
/// <c>agent-secrets</c> store, spend on <c>gateway-state</c>, <c>provider-health</c> events on
/// <c>agent-pubsub</c>, all through its sidecar. The catalog is <c>--catalog</c> or the one beside the binary.
/// </summary>
public static class GatewayServiceHost
{
    /// <param name="overrides">Replaces registrations after the composition (tests point the Dapr client at a double).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? overrides = null)
    {
        var builder = GrpcServiceHost.CreateBuilder(args, DaprComponents.AppPorts.Gateway, DaprComponents.Apps.Gateway);
        var catalogPath = builder.Configuration["catalog"] ?? Path.Combine(AppContext.BaseDirectory, "catalog.yaml");
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.Configure<ResilienceOptions>(builder.Configuration.GetSection("Resilience"));
        services.Configure<ResponseCacheOptions>(builder.Configuration.GetSection("Cache"));
        services.Configure<BudgetOptions>(builder.Configuration.GetSection("Budgets"));
        services.TryAddSingleton(_ => new DaprClientBuilder().Build());
        services.AddSingleton<ISecretSource>(sp => new DaprSecretSource(sp.GetRequiredService<DaprClient>()));
        services.AddSingleton<ISpendStore>(sp => new DaprSpendStore(sp.GetRequiredService<DaprClient>()));
        services.AddSingleton<IEventPublisher>(sp => new DaprEventPublisher(sp.GetRequiredService<DaprClient>()));
        // The semantic response cache's embedder, Cache:Embeddings (the same choices as Memory:Embeddings): the
        // local sentence model by default, loaded on its first use, so not at all while Cache:Semantic is off.
        // A question embedding the agents service sends along is used only when it names this embedder.
        services.TryAddSingleton(sp => Embedders.Create(
            builder.Configuration.GetSection("Cache:Embeddings").Get<EmbeddingOptions>(), name => sp.GetRequiredService<ISecretSource>().GetSecret(name)));
        services.AddGateway(ProviderCatalog.Load(catalogPath));
        overrides?.Invoke(services);

        var app = builder.Build();
        app.MapGrpcService<GatewayGrpcService>().RequireDaprAppToken(app.Configuration);
        app.MapServiceDefaults();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var cache = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ResponseCacheOptions>>().Value;
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("PersistentAgents.Gateway").LogInformation(
                "Gateway service (distributed mode) on {Urls}; catalog {Catalog}; response cache {Cache}", string.Join(", ", app.Urls), catalogPath,
                !cache.Enabled ? "off"
                : cache.Semantic ? $"exact and semantic with {Embedders.IdOf(app.Services.GetRequiredService<Microsoft.Extensions.AI.IEmbeddingGenerator<string, Microsoft.Extensions.AI.Embedding<float>>>())}"
                : "exact only (Cache:Semantic off)");
        });
        return app;
    }
}
