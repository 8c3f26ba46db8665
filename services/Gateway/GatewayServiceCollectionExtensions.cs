using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;

namespace PersistentAgents.Gateway;

public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Registers the gateway over the providers of <paramref name="catalog"/> that can run: real providers
    /// whose API key the secret source has, and simulated ones as the catalog's simulated mode says.
    /// </summary>
    public static IServiceCollection AddGateway(this IServiceCollection services, ProviderCatalog catalog)
    {
        services.AddOptions<ResilienceOptions>();
        // Checked when the host starts, so that a semantic cache over a lexical embedder never serves a reply.
        services.AddOptions<ResponseCacheOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ResponseCacheOptions>, ResponseCacheOptionsValidation>());
        services.AddOptions<BudgetOptions>();
        services.AddSingleton<TokenCounter>();
        services.AddSingleton<ResponseCache>();
        services.AddSingleton<SpendLedger>();
        services.AddSingleton(sp => ActivateProviders(catalog, sp.GetRequiredService<ISecretSource>()));
        services.AddMetrics();
        services.AddSingleton(sp =>
        {
            var providers = catalog.Providers
                .Where(p => sp.GetRequiredService<ActiveProviders>().Models.Any(m => m.Provider.Name == p.Name))
                .Select(p => p.Name)
                .ToList();
            var resilience = new ProviderResilience(
                providers,
                sp.GetRequiredService<IOptions<ResilienceOptions>>().Value,
                sp.GetRequiredService<IEventPublisher>(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<ProviderResilience>>());
            GatewayTelemetry.ObserveCircuits(
                sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>().Create(new System.Diagnostics.Metrics.MeterOptions(GatewayTelemetry.Name)),
                () => providers.Select(p => (p, resilience.CircuitStateOf(p))));
            return resilience;
        });
        services.AddSingleton<IGatewayApi>(sp => new GatewayService(
            sp.GetRequiredService<ActiveProviders>().Models,
            sp.GetRequiredService<ProviderResilience>(),
            sp.GetRequiredService<TokenCounter>(),
            sp.GetRequiredService<ResponseCache>(),
            sp.GetRequiredService<SpendLedger>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<GatewayService>>(),
            sp.GetRequiredService<IOptions<ResilienceOptions>>().Value));
        return services;
    }

    private static ActiveProviders ActivateProviders(ProviderCatalog catalog, ISecretSource secrets)
    {
        var real = new List<ActiveModel>();
        var missingKeys = new List<string>();
        foreach (var provider in catalog.Providers.Where(p => p.Kind != ProviderKind.Simulated))
        {
            var key = provider.ApiKeySecret is null ? null : secrets.GetSecret(provider.ApiKeySecret);
            if (key is null)
            {
                missingKeys.Add($"{provider.Name} (secret {provider.ApiKeySecret ?? "not named"})");
                continue;
            }

            var adapter = ChatClientProvider.Create(provider, key);
            real.AddRange(provider.Models.Select(m => new ActiveModel(adapter, m) { CallTimeout = TimeSpan.FromSeconds(provider.TimeoutSeconds) }));
        }

        var useSimulated = catalog.Simulated == SimulatedMode.Always || (catalog.Simulated == SimulatedMode.Auto && real.Count == 0);
        var simulated = useSimulated
            ? catalog.Providers
                .Where(p => p.Kind == ProviderKind.Simulated)
                .SelectMany(p =>
                {
                    // One adapter per provider, so a run-time override reaches all its models.
                    var adapter = new SimulatedProvider(p.Name);
                    return p.Models.Select(m => new ActiveModel(adapter, m) { CallTimeout = TimeSpan.FromSeconds(p.TimeoutSeconds) });
                })
                .ToList()
            : [];
        var models = real.Concat(simulated).ToList();
        if (models.Count == 0)
        {
            throw new CatalogException(
                $"catalog: no provider can run: no API key for {string.Join(", ", missingKeys)} and simulated providers are {catalog.Simulated.ToString().ToLowerInvariant()}");
        }

        return new ActiveProviders(models, missingKeys);
    }
}

/// <summary>The models that can take calls, and the real providers left out for want of a key.</summary>
public sealed record ActiveProviders(IReadOnlyList<ActiveModel> Models, IReadOnlyList<string> ProvidersWithoutKey)
{
    public bool AllSimulated => Models.All(m => m.Provider.Simulated);

    /// <summary>The active simulated provider named <paramref name="name"/> (to override its behaviour), or null.</summary>
    public SimulatedProvider? Simulated(string name) =>
        Models.Select(m => m.Provider).OfType<SimulatedProvider>().FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.Ordinal));
}
