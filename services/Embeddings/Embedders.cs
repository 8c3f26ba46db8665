using Microsoft.Extensions.AI;

namespace PersistentAgents.Embeddings;

/// <summary>Builds the configured embedder, and tells about any embedder and the embeddings it made.</summary>
public static class Embedders
{
    internal const string TruncatedProperty = "truncated";

    /// <summary>
    /// The embedder that <paramref name="options"/> choose (<see cref="EmbeddingOptions.Kind"/>); null options give
    /// MiniLM. An OpenAI-compatible endpoint whose key <paramref name="secret"/> does not find falls back to MiniLM,
    /// which the generator's metadata then shows (<see cref="IdOf"/>).
    /// </summary>
    /// <exception cref="ArgumentException">Kind is none of minilm, hashed, openai.</exception>
    public static IEmbeddingGenerator<string, Embedding<float>> Create(EmbeddingOptions? options, Func<string, string?> secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        options ??= new EmbeddingOptions();
        return KindOf(options) switch
        {
            EmbeddingOptions.HashedKind => new HashedNGramEmbedder(),
            EmbeddingOptions.OpenAIKind when secret(options.ApiKeySecret) is { Length: > 0 } key => CreateOpenAI(options, key),
            _ => new MiniLmEmbedder(options.ModelCacheDirectory),
        };
    }

    /// <summary>
    /// "{model}@{dimensions}" from the generator's metadata, e.g. all-MiniLM-L6-v2@384 or hashed-ngrams@768: vectors
    /// made under different ids are not comparable.
    /// </summary>
    /// <exception cref="InvalidOperationException">The generator does not report its model or its dimensions.</exception>
    public static string IdOf(IEmbeddingGenerator<string, Embedding<float>> generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>();
        return metadata is { DefaultModelId: { Length: > 0 } model, DefaultModelDimensions: { } dimensions }
            ? $"{model}@{dimensions}"
            : throw new InvalidOperationException($"{generator.GetType().Name} does not report its model and dimensions in its metadata.");
    }

    /// <summary>True for an embedder that matches words rather than meanings (the hashed n-gram one), also when wrapped.</summary>
    public static bool IsLexical(IEmbeddingGenerator<string, Embedding<float>> generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        return generator.GetService<HashedNGramEmbedder>() is not null;
    }

    /// <summary>True when the text was longer than the model reads and only its beginning was embedded.</summary>
    public static bool WasTruncated(Embedding<float> embedding)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        return embedding.AdditionalProperties?.TryGetValue(TruncatedProperty, out var truncated) == true && truncated is true;
    }

    private static string KindOf(EmbeddingOptions options) => options.Kind?.Trim().ToLowerInvariant() switch
    {
        null or "" => options.Endpoint is { Length: > 0 } ? EmbeddingOptions.OpenAIKind : EmbeddingOptions.MiniLmKind,
        { } kind when kind is EmbeddingOptions.MiniLmKind or EmbeddingOptions.HashedKind or EmbeddingOptions.OpenAIKind => kind,
        _ => throw new ArgumentException(
            $"Embeddings Kind '{options.Kind}' is not known: use {EmbeddingOptions.MiniLmKind}, {EmbeddingOptions.HashedKind} or {EmbeddingOptions.OpenAIKind}.",
            nameof(options)),
    };

    private static IEmbeddingGenerator<string, Embedding<float>> CreateOpenAI(EmbeddingOptions options, string key)
    {
        var clientOptions = new OpenAI.OpenAIClientOptions();
        if (options.Endpoint is { Length: > 0 } endpoint)
        {
            clientOptions.Endpoint = new Uri(endpoint);
        }

        return new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential(key), clientOptions)
            .GetEmbeddingClient(options.Model)
            .AsIEmbeddingGenerator(options.Dimensions);
    }
}
