using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Memory;

public static class MemoryServiceCollectionExtensions
{
    /// <summary>
    /// The memory service over whichever storage ports the host registered: the API, the embedder, and the
    /// hourly retention and consolidation of episodes. <paramref name="secret"/> reads the embeddings
    /// endpoint's API key by name.
    /// </summary>
    public static IServiceCollection AddMemoryService(this IServiceCollection services, Func<IServiceProvider, string, string?> secret)
    {
        ArgumentNullException.ThrowIfNull(services);
        // Unset stays the hashed embedder: semantic memory's stores are built for its 768 dimensions (MemoryService.EmbedAsync).
        services.AddSingleton(sp => Embedders.Create(
            sp.GetRequiredService<IOptions<MemoryOptions>>().Value.Embeddings ?? new EmbeddingOptions { Kind = EmbeddingOptions.HashedKind },
            name => secret(sp, name)));
        services.AddSingleton<MemoryService>();
        services.AddSingleton<IMemoryApi>(sp => sp.GetRequiredService<MemoryService>());
        services.AddSingleton<EpisodeMaintenance>();
        services.AddSingleton<IMemoryMaintenanceApi>(sp => sp.GetRequiredService<EpisodeMaintenance>());
        services.AddHostedService<EpisodeMaintenanceService>();
        return services;
    }
}
