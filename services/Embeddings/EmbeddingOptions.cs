namespace PersistentAgents.Embeddings;

/// <summary>
/// Which embedder <see cref="Embedders.Create"/> builds (Memory:Embeddings): the local MiniLM model, the local
/// hashed n-gram one, or an OpenAI-compatible endpoint.
/// </summary>
public sealed class EmbeddingOptions
{
    public const string MiniLmKind = "minilm";
    public const string HashedKind = "hashed";
    public const string OpenAIKind = "openai";

    /// <summary>
    /// minilm, hashed or openai (any case). Unset: openai when <see cref="Endpoint"/> is set (how an endpoint was
    /// chosen before there were kinds), else minilm.
    /// </summary>
    public string? Kind { get; set; }

    /// <summary>openai: base address, e.g. https://api.openai.com/v1; unset, OpenAI's own.</summary>
    public string? Endpoint { get; set; }

    /// <summary>openai: the embedding model asked for.</summary>
    public string Model { get; set; } = "text-embedding-3-small";

    /// <summary>openai: the secret (environment variable in embedded mode) holding the API key; when it is missing minilm is used.</summary>
    public string ApiKeySecret { get; set; } = "OPENAI_API_KEY";

    /// <summary>openai: the dimensions the endpoint is asked for (text-embedding-3-small gives 1536 natively).</summary>
    public int Dimensions { get; set; } = 1536;

    /// <summary>minilm: where the model file is cached; unset, <see cref="MiniLmEmbedder.DefaultModelCacheDirectory"/>.</summary>
    public string? ModelCacheDirectory { get; set; }
}
