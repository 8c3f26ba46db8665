using Dapr.Client;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Memory.Dapr;

public static class DaprMemoryServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Dapr adapters of the memory service's three storage ports: working memory on the
    /// <c>agent-working-memory</c> state store, semantic memory on the <c>agent-semantic-memory</c> PostgreSQL
    /// binding, episodes on the <c>agent-episodic-memory</c> blob binding of the given flavour. A
    /// <see cref="DaprClient"/> already registered (e.g. by Dapr.AspNetCore's <c>AddDaprClient</c>) is used;
    /// otherwise one is built from the standard environment (<c>DAPR_GRPC_ENDPOINT</c>, <c>DAPR_API_TOKEN</c> ...).
    /// Semantic memory is built for the registered embedder (the memory service registers it), whose metadata
    /// says its model and dimensions.
    /// </summary>
    public static IServiceCollection AddDaprMemoryStores(this IServiceCollection services, BlobFlavour episodeFlavour)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(_ => new DaprClientBuilder().Build());
        services.AddSingleton<IWorkingMemoryStore>(sp => new DaprWorkingMemoryStore(sp.GetRequiredService<DaprClient>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IVectorStore>(sp => PgVectorStoreFor(sp.GetRequiredService<DaprClient>(), sp.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>()));
        services.AddSingleton<IEpisodeStore>(sp => new BlobEpisodeStore(sp.GetRequiredService<DaprClient>(), episodeFlavour));
        return services;
    }

    private static PgVectorStore PgVectorStoreFor(DaprClient dapr, IEmbeddingGenerator<string, Embedding<float>> embedder)
    {
        var metadata = embedder.GetService<EmbeddingGeneratorMetadata>();
        var dimensions = metadata?.DefaultModelDimensions
            ?? throw new InvalidOperationException($"the embedder {metadata?.DefaultModelId} does not declare its dimensions (EmbeddingGeneratorMetadata.DefaultModelDimensions), which the pgvector store's index needs");
        return new PgVectorStore(dapr, Embedders.IdOf(embedder), dimensions);
    }
}
