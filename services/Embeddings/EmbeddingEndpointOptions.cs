namespace PersistentAgents.Embeddings;

/// <summary>An OpenAI-compatible embeddings endpoint (Memory:Embeddings): used when set and its key is found.</summary>
public sealed class EmbeddingEndpointOptions
{
    /// <summary>Base address, e.g. https://api.openai.com/v1.</summary>
    public string? Endpoint { get; set; }

    public string Model { get; set; } = "text-embedding-3-small";

    /// <summary>The secret (environment variable in embedded mode) holding the API key.</summary>
    public string ApiKeySecret { get; set; } = "OPENAI_API_KEY";
}
