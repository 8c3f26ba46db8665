using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;

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
        services.AddSingleton(sp => Embedder(sp.GetRequiredService<IOptions<MemoryOptions>>().Value.Embeddings, name => secret(sp, name)));
        services.AddSingleton<MemoryService>();
        services.AddSingleton<IMemoryApi>(sp => sp.GetRequiredService<MemoryService>());
        services.AddSingleton<EpisodeMaintenance>();
        services.AddHostedService<EpisodeMaintenanceService>();
        return services;
    }

    /// <summary>An OpenAI-compatible embeddings endpoint when one is configured with its key, else the local embedder.</summary>
    private static IEmbeddingGenerator<string, Embedding<float>> Embedder(EmbeddingEndpointOptions? endpoint, Func<string, string?> secret) =>
        endpoint?.Endpoint is { Length: > 0 } address && secret(endpoint.ApiKeySecret) is { } key
            ? new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential(key), new OpenAI.OpenAIClientOptions { Endpoint = new Uri(address) })
                .GetEmbeddingClient(endpoint.Model)
                .AsIEmbeddingGenerator(HashedNGramEmbedder.DefaultDimensions)
            : new HashedNGramEmbedder();
}
