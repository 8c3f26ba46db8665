using System.Numerics.Tensors;
using System.Text;
using Microsoft.Extensions.AI;

namespace PersistentAgents.Embeddings;

/// <summary>
/// A local embedder that needs no model download: words, word pairs and character trigrams are hashed
/// (with a hashed sign, so collisions cancel rather than pile up) into a fixed number of dimensions and
/// the vector is normalised to unit length. Texts that share vocabulary land close together; it is a
/// lexical embedder, not a semantic one, and says so in its name.
/// </summary>
public sealed class HashedNGramEmbedder : IEmbeddingGenerator<string, Embedding<float>>
{
    public const string ModelName = "hashed-ngrams";
    public const int DefaultDimensions = 768;

    private readonly EmbeddingGeneratorMetadata _metadata;

    public HashedNGramEmbedder(int dimensions = DefaultDimensions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 16);
        Dimensions = dimensions;
        _metadata = new EmbeddingGeneratorMetadata("local", providerUri: null, ModelName, dimensions);
    }

    public int Dimensions { get; }

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var embeddings = new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v))
        {
            ModelId = ModelName,
            CreatedAt = DateTimeOffset.UtcNow,
        }));
        return Task.FromResult(embeddings);
    }

    public float[] Embed(string text)
    {
        var vector = new float[Dimensions];
        var words = Tokenize(text);
        for (var i = 0; i < words.Count; i++)
        {
            Add(vector, words[i], 1.0f);
            if (i > 0)
            {
                Add(vector, string.Concat(words[i - 1], " ", words[i]), 0.7f);
            }

            var padded = string.Concat("<", words[i], ">");
            for (var j = 0; j + 3 <= padded.Length; j++)
            {
                Add(vector, padded.AsSpan(j, 3), 0.4f);
            }
        }

        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }

        return vector;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(_metadata) ? _metadata
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
    }

    private static List<string> Tokenize(string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c))
            {
                current.Append(char.ToLowerInvariant(c));
            }
            else if (current.Length > 0)
            {
                words.Add(current.ToString());
                current.Clear();
            }
        }

        if (current.Length > 0)
        {
            words.Add(current.ToString());
        }

        return words;
    }

    private void Add(float[] vector, ReadOnlySpan<char> feature, float weight)
    {
        // FNV-1a: stable across processes and runtimes, unlike string.GetHashCode.
        var hash = 2166136261u;
        foreach (var c in feature)
        {
            hash = (hash ^ c) * 16777619u;
        }

        var index = (int)(hash % (uint)Dimensions);
        vector[index] += (hash & 0x8000_0000u) == 0 ? weight : -weight;
    }
}
