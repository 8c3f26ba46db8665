using Microsoft.Extensions.AI;

namespace PersistentAgents.Embeddings;

public static class Embedders
{
    /// <summary>What stored vectors record as their maker: model and dimensions, e.g. <c>hashed-ngrams@768</c>.</summary>
    public static string IdOf(IEmbeddingGenerator<string, Embedding<float>> embedder)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        var metadata = embedder.GetService<EmbeddingGeneratorMetadata>()
            ?? throw new ArgumentException("the embedder does not describe itself (no EmbeddingGeneratorMetadata)", nameof(embedder));
        return $"{metadata.DefaultModelId}@{metadata.DefaultModelDimensions}";
    }

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
