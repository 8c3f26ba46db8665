using Microsoft.Extensions.AI;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Memory.Tests;

public sealed class EmbeddersTests
{
    private static readonly Func<string, string?> NoSecrets = _ => null;
    private static readonly Func<string, string?> AnyKey = _ => "sk-test";

    [Fact]
    public void MiniLm_is_the_default()
    {
        using var byNull = Embedders.Create(null, NoSecrets);
        using var byEmptyOptions = Embedders.Create(new EmbeddingOptions(), AnyKey);

        Assert.IsType<MiniLmEmbedder>(byNull);
        Assert.Equal("all-MiniLM-L6-v2@384", Embedders.IdOf(byEmptyOptions));
    }

    [Fact]
    public void Kind_chooses_the_hashed_embedder_which_is_lexical()
    {
        using var hashed = Embedders.Create(new EmbeddingOptions { Kind = "Hashed" }, AnyKey);

        Assert.IsType<HashedNGramEmbedder>(hashed);
        Assert.Equal("hashed-ngrams@768", Embedders.IdOf(hashed));
        Assert.True(Embedders.IsLexical(hashed));
    }

    [Fact]
    public void An_endpoint_without_a_kind_means_openai_asked_for_its_dimensions()
    {
        using var openAI = Embedders.Create(new EmbeddingOptions { Endpoint = "http://127.0.0.1:9/v1" }, AnyKey);
        using var smaller = Embedders.Create(new EmbeddingOptions { Kind = "openai", Endpoint = "http://127.0.0.1:9/v1", Dimensions = 512 }, AnyKey);

        var metadata = openAI.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal("openai", metadata.ProviderName);
        Assert.Equal("text-embedding-3-small@1536", Embedders.IdOf(openAI));
        Assert.Equal("text-embedding-3-small@512", Embedders.IdOf(smaller));
        Assert.False(Embedders.IsLexical(openAI));
    }

    [Fact]
    public void Openai_without_its_key_falls_back_to_minilm_and_says_so()
    {
        using var embedder = Embedders.Create(new EmbeddingOptions { Kind = "openai", Endpoint = "http://127.0.0.1:9/v1" }, NoSecrets);

        Assert.Equal("local", embedder.GetService<EmbeddingGeneratorMetadata>()!.ProviderName);
        Assert.Equal("all-MiniLM-L6-v2@384", Embedders.IdOf(embedder));
    }

    [Fact]
    public void An_unknown_kind_is_refused_naming_Kind()
    {
        var error = Assert.Throws<ArgumentException>(() => Embedders.Create(new EmbeddingOptions { Kind = "bert" }, AnyKey));

        Assert.Contains("Kind 'bert'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_embedding_is_truncated_only_when_marked_so()
    {
        Assert.False(Embedders.WasTruncated(new Embedding<float>(new float[4])));
        Assert.True(Embedders.WasTruncated(new Embedding<float>(new float[4]) { AdditionalProperties = new() { ["truncated"] = true } }));
    }
}
