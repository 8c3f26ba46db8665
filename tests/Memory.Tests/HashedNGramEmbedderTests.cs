using PersistentAgents.Embeddings;
using System.Numerics.Tensors;
using Microsoft.Extensions.AI;

namespace PersistentAgents.Memory.Tests;

public sealed class HashedNGramEmbedderTests : IDisposable
{
    private readonly HashedNGramEmbedder _embedder = new();

    public void Dispose() => _embedder.Dispose();

    [Fact]
    public void Vectors_have_768_dimensions_and_unit_length()
    {
        var vector = _embedder.Embed("Invoices above ten thousand euros need two approvals");

        Assert.Equal(768, HashedNGramEmbedder.DefaultDimensions);
        Assert.Equal(768, vector.Length);
        Assert.Equal(1.0, TensorPrimitives.Norm(vector), tolerance: 1e-5);
    }

    [Fact]
    public async Task The_embedding_generator_interface_gives_the_same_vectors()
    {
        var generated = await _embedder.GenerateAsync(["The legal team meets every Tuesday morning", "x"]);

        Assert.Equal(2, generated.Count);
        Assert.Equal(_embedder.Embed("The legal team meets every Tuesday morning"), generated[0].Vector.ToArray());
        Assert.Equal(768, generated[1].Vector.Length);
        Assert.Equal(768, _embedder.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);
    }

    [Fact]
    public void The_same_text_always_gives_the_same_vector()
    {
        const string Text = "Our office in Lyon closes at six on Fridays";

        var first = _embedder.Embed(Text);
        using var other = new HashedNGramEmbedder();
        var second = other.Embed(Text);

        Assert.Equal(first, second);
    }

    [Fact]
    public void Texts_that_share_words_are_closer_than_unrelated_texts()
    {
        var anchor = _embedder.Embed("Our office in Lyon closes at six on Fridays");
        var related = _embedder.Embed("When does the office in Lyon close on Fridays?");
        var unrelated = _embedder.Embed("Invoices above ten thousand euros need two approvals");

        var relatedSimilarity = TensorPrimitives.CosineSimilarity(anchor, related);
        var unrelatedSimilarity = TensorPrimitives.CosineSimilarity(anchor, unrelated);

        Assert.True(relatedSimilarity > unrelatedSimilarity + 0.3, $"related {relatedSimilarity:F3} vs unrelated {unrelatedSimilarity:F3}");
        Assert.InRange(unrelatedSimilarity, -0.2, 0.2);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("?!, -- ...")]
    public void Text_without_words_gives_a_zero_vector(string text)
    {
        var vector = _embedder.Embed(text);

        Assert.Equal(768, vector.Length);
        Assert.All(vector, v => Assert.Equal(0f, v));
    }
}
