using Dapr.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace PersistentAgents.Memory.Dapr;

public static class DaprMemoryServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Dapr adapters of the memory service's three storage ports: working memory on the
    /// <c>agent-working-memory</c> state store, semantic memory on the <c>agent-semantic-memory</c> PostgreSQL
    /// binding, episodes on the <c>agent-episodic-memory</c> blob binding of the given flavour. A
    /// <see cref="DaprClient"/> already registered (e.g. by Dapr.AspNetCore's <c>AddDaprClient</c>) is used;
    /// otherwise one is built from the standard environment (<c>DAPR_GRPC_ENDPOINT</c>, <c>DAPR_API_TOKEN</c> ...).
    /// </summary>
    public static IServiceCollection AddDaprMemoryStores(this IServiceCollection services, BlobFlavour episodeFlavour)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(_ => new DaprClientBuilder().Build());
        services.AddSingleton<IWorkingMemoryStore>(sp => new DaprWorkingMemoryStore(sp.GetRequiredService<DaprClient>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IVectorStore>(sp => new PgVectorStore(sp.GetRequiredService<DaprClient>()));
        services.AddSingleton<IEpisodeStore>(sp => new BlobEpisodeStore(sp.GetRequiredService<DaprClient>(), episodeFlavour));
        return services;
    }
}
