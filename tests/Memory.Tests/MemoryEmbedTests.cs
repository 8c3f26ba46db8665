using System.Numerics.Tensors;
using Grpc.Core;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts.V1;
using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Embeddings;
using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Memory.Tests;

/// <summary>Memory's Embed: the texts of a request embedded as memory embeds its own, within its limits.</summary>
public sealed class MemoryEmbedTests(MiniLmFixture model) : IClassFixture<MiniLmFixture>, IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly HashedNGramEmbedder _hashed = new();

    public void Dispose()
    {
        _hashed.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public async Task A_batch_comes_back_in_order_unit_length_with_the_embedder_id_and_the_word_pieces_read()
    {
        var memory = NewService(model.Embedder, new MemoryOptions());
        var longText = string.Concat(Enumerable.Repeat("Quarterly revenue grew in every region except the north. ", 600))[..32_000];
        string[] inputs = ["How do I reset my password?", longText, "The invoice for March is overdue"];

        var reply = await memory.EmbedAsync(Request(inputs), CancellationToken.None);

        Assert.Equal("all-MiniLM-L6-v2@384", reply.Embedder);
        Assert.Equal(3, reply.Embeddings.Count);
        Assert.All(reply.Embeddings, e => Assert.Equal(1.0, TensorPrimitives.Norm([.. e.Values]), tolerance: 1e-5));
        Assert.Equal([false, true, false], reply.Embeddings.Select(e => e.Truncated));
        for (var i = 0; i < inputs.Length; i++)
        {
            Assert.Equal(await model.EmbedAsync(inputs[i]), reply.Embeddings[i].Values.ToArray(), (a, b) => Math.Abs(a - b) < 1e-5);
        }

        // The word pieces read: the long text counts for the model's window, not for all it holds.
        var runtime = MiniLmRuntime.For(model.Embedder.ModelCacheDirectory);
        Assert.Equal(inputs.Sum(t => runtime.Tokenize(t).TokenIds.Count), reply.Tokens);
        Assert.Equal(MiniLmEmbedder.MaxWordPieces, runtime.Tokenize(longText).TokenIds.Count);
    }

    [Fact]
    public async Task The_hashed_embedder_counts_the_words_it_hashes()
    {
        var memory = NewService(_hashed, new MemoryOptions());

        var reply = await memory.EmbedAsync(Request("Invoice 4471 is overdue!", "two words"), CancellationToken.None);

        Assert.Equal($"{HashedNGramEmbedder.ModelName}@{HashedNGramEmbedder.DefaultDimensions}", reply.Embedder);
        Assert.Equal(6, reply.Tokens);
        Assert.All(reply.Embeddings, e => Assert.Equal(HashedNGramEmbedder.DefaultDimensions, e.Values.Count));
    }

    [Theory]
    [InlineData(0, 10, "inputs: must hold at least one text")]
    [InlineData(4, 10, "inputs: 4 texts, the limit is 3 (Memory:EmbedMaxInputs)")]
    [InlineData(1, 11, "inputs[0]: is 11 characters, the limit is 10 (Memory:EmbedMaxInputCharacters)")]
    [InlineData(3, 9, "inputs: 27 characters in all, the limit is 25 (Memory:EmbedMaxTotalCharacters)")]
    [InlineData(2, 0, "inputs[0]: must not be empty")]
    public async Task A_request_past_a_limit_is_refused_naming_the_field_and_the_setting(int count, int characters, string message)
    {
        var memory = NewService(_hashed, new MemoryOptions { EmbedMaxInputs = 3, EmbedMaxInputCharacters = 10, EmbedMaxTotalCharacters = 25 });

        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            memory.EmbedAsync(Request([.. Enumerable.Repeat(new string('a', characters), count)]), CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Equal(message, refused.Status.Detail);
    }

    private static EmbedRequest Request(params string[] inputs) => new() { Tenant = "acme", Inputs = { inputs } };

    private MemoryService NewService(IEmbeddingGenerator<string, Embedding<float>> embedder, MemoryOptions options)
    {
        var time = new FakeTimeProvider();
        return new(
            new SqliteWorkingMemoryStore(new SqliteDatabase(_folder.File("working.db"), SqliteWorkingMemoryStore.Schema), time),
            new InProcessVectorIndex(new SqliteDatabase(_folder.File("semantic.db"), InProcessVectorIndex.Schema), _folder.Path, Embedders.IdOf(embedder)),
            new FileEpisodeStore(_folder.Path),
            embedder,
            Options.Create(options),
            time);
    }
}
