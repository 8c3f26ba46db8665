using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Memory;

public static class MemoryServiceCollectionExtensions
{
    /// <summary>
    /// The memory service over whichever storage ports the host registered: the API, the embedder, the
    /// hourly retention and consolidation of episodes, and the re-embedding of memories an earlier embedder
    /// made. <paramref name="secret"/> reads the embeddings endpoint's API key by name.
    /// </summary>
    public static IServiceCollection AddMemoryService(this IServiceCollection services, Func<IServiceProvider, string, string?> secret)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(sp => Embedders.Create(sp.GetRequiredService<IOptions<MemoryOptions>>().Value.Embeddings, name => secret(sp, name)));
        services.AddSingleton<MemoryService>();
        services.AddSingleton<IMemoryApi>(sp => sp.GetRequiredService<MemoryService>());
        services.AddSingleton<EpisodeMaintenance>();
        services.AddSingleton<IMemoryMaintenanceApi>(sp => sp.GetRequiredService<EpisodeMaintenance>());
        services.AddHostedService<EpisodeMaintenanceService>();
        services.AddSingleton<StaleMemoryStatus>();
        services.AddSingleton<SemanticMemoryReembedding>();
        services.AddHostedService(sp => sp.GetRequiredService<SemanticMemoryReembedding>());
        return services;
    }
}
