using System.Numerics.Tensors;
using System.Security.Cryptography;
using Microsoft.Extensions.AI;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Memory.Tests;

/// <summary>One MiniLM embedder for the test run: its model is loaded once per process, from the machine's cache.</summary>
public sealed class MiniLmFixture
{
    public MiniLmEmbedder Embedder { get; } = new();

    public async Task<float[]> EmbedAsync(string text, CancellationToken cancellationToken = default) =>
        (await Embedder.GenerateVectorAsync(text, cancellationToken: cancellationToken)).ToArray();
}

public sealed class MiniLmEmbedderTests(MiniLmFixture model) : IClassFixture<MiniLmFixture>
{
    private const int UnknownWordPiece = 100;

    private static float Similarity(float[] a, float[] b) => TensorPrimitives.CosineSimilarity(a, b);

    [Fact]
    public async Task Vectors_have_384_dimensions_and_unit_length()
    {
        var vector = await model.EmbedAsync("Invoices above ten thousand euros need two approvals");

        Assert.Equal(MiniLmEmbedder.Dimensions, vector.Length);
        Assert.Equal(1.0, TensorPrimitives.Norm(vector), tolerance: 1e-5);
    }

    [Fact]
    public void Metadata_names_the_local_model_and_its_dimensions()
    {
        var metadata = model.Embedder.GetService<EmbeddingGeneratorMetadata>()!;

        Assert.Equal("local", metadata.ProviderName);
        Assert.Equal("all-MiniLM-L6-v2", metadata.DefaultModelId);
        Assert.Equal(384, metadata.DefaultModelDimensions);
        Assert.Equal("all-MiniLM-L6-v2@384", Embedders.IdOf(model.Embedder));
        Assert.False(Embedders.IsLexical(model.Embedder));
    }

    [Fact]
    public async Task A_paraphrase_scores_higher_than_an_unrelated_text()
    {
        var question = await model.EmbedAsync("How do I reset my password?");
        var paraphrase = await model.EmbedAsync("I forgot my login password, how can I change it?");
        var unrelated = await model.EmbedAsync("The invoice for March is overdue");

        var paraphraseSimilarity = Similarity(question, paraphrase);
        var unrelatedSimilarity = Similarity(question, unrelated);

        Assert.True(paraphraseSimilarity > unrelatedSimilarity + 0.3, $"paraphrase {paraphraseSimilarity:F3} vs unrelated {unrelatedSimilarity:F3}");
    }

    [Fact]
    public void Short_tokens_accented_words_and_words_across_line_breaks_are_known_word_pieces()
    {
        // The package's own tokenizer reads each of these as [UNK].
        var tokenized = MiniLmRuntime.For(model.Embedder.ModelCacheDirectory).Tokenize("Q3 café naïve alpha\nbeta\tgamma");

        Assert.DoesNotContain(UnknownWordPiece, tokenized.TokenIds);
    }

    [Fact]
    public async Task Q3_and_Q4_give_different_vectors()
    {
        var q3 = await model.EmbedAsync("Q3 results");
        var q4 = await model.EmbedAsync("Q4 results");

        Assert.NotEqual(q3, q4);
        Assert.True(Similarity(q3, q4) < 0.999, $"Q3 vs Q4 {Similarity(q3, q4):F4}");
    }

    [Fact]
    public async Task Multi_line_text_embeds_as_the_same_text_on_one_line()
    {
        var multiLine = await model.EmbedAsync("Invoices from Acme\ngo to the billing team\r\n\r\nin Lyon,\tnot Paris");
        var singleLine = await model.EmbedAsync("Invoices from Acme go to the billing team in Lyon, not Paris");

        Assert.True(Similarity(multiLine, singleLine) > 0.99, $"{Similarity(multiLine, singleLine):F4}");
    }

    [Fact]
    public async Task Accented_words_embed_as_their_unaccented_spelling()
    {
        Assert.True(Similarity(await model.EmbedAsync("café"), await model.EmbedAsync("cafe")) > 0.99);
        Assert.True(Similarity(
            await model.EmbedAsync("Crème brûlée à Zürich, naïve façade, Ångström, Tiếng Việt"),
            await model.EmbedAsync("Creme brulee a Zurich, naive facade, Angstrom, Tieng Viet")) > 0.99);
    }

    [Fact]
    public async Task A_32000_character_prompt_is_cut_to_what_the_model_reads_and_marked_truncated()
    {
        var prompt = string.Concat(Enumerable.Repeat("Quarterly revenue grew in every region except the north. ", 600))[..32_000];

        var generated = await model.Embedder.GenerateAsync([prompt, "A short prompt"]);

        Assert.Equal(MiniLmEmbedder.Dimensions, generated[0].Vector.Length);
        Assert.Equal(1.0, TensorPrimitives.Norm(generated[0].Vector.Span), tolerance: 1e-5);
        Assert.True(Embedders.WasTruncated(generated[0]));
        Assert.False(Embedders.WasTruncated(generated[1]));
        Assert.Equal(MiniLmEmbedder.MaxWordPieces, MiniLmRuntime.For(model.Embedder.ModelCacheDirectory).Tokenize(prompt).TokenIds.Count);
    }

    [Fact]
    public async Task Concurrent_calls_and_one_call_with_many_values_give_the_vectors_of_single_calls()
    {
        var texts = Enumerable.Range(0, 12)
            .Select(i => $"Agent {i} asks about order {i * 37} and its delivery to warehouse {i % 3}" + new string('!', i))
            .ToArray();
        var single = new List<float[]>();
        foreach (var text in texts)
        {
            single.Add(await model.EmbedAsync(text));
        }

        var concurrent = await Task.WhenAll(texts.Select(text => Task.Run(() => model.EmbedAsync(text))));
        var oneCall = await model.Embedder.GenerateAsync(texts);

        for (var i = 0; i < texts.Length; i++)
        {
            Assert.True(Similarity(single[i], concurrent[i]) > 0.9999, $"text {i} concurrent: {Similarity(single[i], concurrent[i]):F6}");
            Assert.True(Similarity(single[i], oneCall[i].Vector.ToArray()) > 0.9999, $"text {i} in one call");
        }
    }

    [Fact]
    public async Task A_cancelled_call_throws_and_the_next_call_still_works()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.EmbedAsync("never embedded", cancelled.Token));
        Assert.Equal(MiniLmEmbedder.Dimensions, (await model.EmbedAsync("embedded after a cancellation")).Length);
    }

    [Fact]
    public async Task A_call_cancelled_while_queued_behind_full_batches_is_cancelled_and_the_batches_still_finish()
    {
        // When the cancelled call's continuation runs depends on the thread pool (other test classes run the
        // model too), so this asserts the outcome, not the timing: cancelled, and the batches ahead unharmed.
        var fullBatch = model.Embedder.GenerateAsync(Enumerable.Range(0, 3 * MiniLmRuntime.MaxBatchSize)
            .Select(i => string.Join(' ', Enumerable.Repeat($"warehouse {i} shipped the order late again", 8)))
            .ToArray());
        using var cancellation = new CancellationTokenSource();
        var queued = model.EmbedAsync("waits for the next batch", cancellation.Token);

        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        Assert.Equal(3 * MiniLmRuntime.MaxBatchSize, (await fullBatch).Count);
    }
}

public sealed class MiniLmModelCacheTests
{
    [Fact]
    public void The_model_file_is_written_once_and_reused()
    {
        using var folder = new TempFolder();

        var path = MiniLmModelFiles.EnsureCachedModel(folder.Path);
        Assert.Equal(MiniLmModelFiles.ModelSha256, Sha256Of(path));
        Assert.Contains(MiniLmModelFiles.ModelSha256[..16], Path.GetFileName(path), StringComparison.Ordinal);
        var marked = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, marked);

        Assert.Equal(path, MiniLmModelFiles.EnsureCachedModel(folder.Path));

        Assert.Equal(marked, File.GetLastWriteTimeUtc(path));
        Assert.Single(Directory.GetFiles(folder.Path));
    }

    [Fact]
    public void A_partial_or_corrupt_model_file_is_replaced()
    {
        using var folder = new TempFolder();
        var path = MiniLmModelFiles.CachedModelPath(folder.Path);
        File.WriteAllBytes(path, new byte[4096]);

        Assert.Equal(path, MiniLmModelFiles.EnsureCachedModel(folder.Path));

        Assert.Equal(MiniLmModelFiles.ModelSha256, Sha256Of(path));
        Assert.Single(Directory.GetFiles(folder.Path));
    }

    private static string Sha256Of(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }
}
