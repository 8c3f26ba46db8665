using Microsoft.Extensions.AI;

namespace PersistentAgents.Embeddings;

public static class Embedders
{
    /// <summary>
    /// An OpenAI-compatible embeddings endpoint when one is configured and <paramref name="secret"/> finds its
    /// key, else the local hashed n-gram embedder. Both give <see cref="HashedNGramEmbedder.DefaultDimensions"/>
    /// dimensions.
    /// </summary>
    public static IEmbeddingGenerator<string, Embedding<float>> Create(EmbeddingEndpointOptions? endpoint, Func<string, string?> secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        return endpoint?.Endpoint is { Length: > 0 } address && secret(endpoint.ApiKeySecret) is { } key
            ? new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential(key), new OpenAI.OpenAIClientOptions { Endpoint = new Uri(address) })
                .GetEmbeddingClient(endpoint.Model)
                .AsIEmbeddingGenerator(HashedNGramEmbedder.DefaultDimensions)
            : new HashedNGramEmbedder();
    }
}
