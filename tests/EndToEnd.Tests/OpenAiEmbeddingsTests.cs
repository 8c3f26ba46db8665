using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Embeddings;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>A host on the hashed embedder with small embedding limits, shared by the tests that only send bad input.</summary>
public sealed class SmallLimitsHost : IAsyncLifetime
{
    public const int MaxInputs = 4;
    public const int MaxInputCharacters = 100;
    public const int MaxTotalCharacters = 250;

    public TestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(),
        "--Memory:EmbedMaxInputs", $"{MaxInputs}",
        "--Memory:EmbedMaxInputCharacters", $"{MaxInputCharacters}",
        "--Memory:EmbedMaxTotalCharacters", $"{MaxTotalCharacters}");

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary><c>POST /v1/embeddings</c> with the host's embedder, called with the official OpenAI .NET client and raw HTTP.</summary>
public sealed class OpenAiEmbeddingsTests(SmallLimitsHost limited) : IClassFixture<SmallLimitsHost>
{
    private const string MiniLm = "all-MiniLM-L6-v2@384";
    private const string Hashed = "hashed-ngrams@768";

    private static OpenAIClient OpenAiClientFor(TestHost host, string key = "any-key-the-host-ignores") => new(
        new ApiKeyCredential(key),
        new OpenAIClientOptions { Endpoint = new Uri(host.Rest.BaseAddress!, "v1"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) });

    private static async Task<(HttpStatusCode Status, JsonObject Body)> PostAsync(TestHost host, string json, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/embeddings") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        using var response = await host.Rest.SendAsync(request);
        return (response.StatusCode, await TestHost.ReadObjectAsync(response));
    }

    [Fact]
    public async Task The_official_client_embeds_a_batch_with_the_default_model_and_a_paraphrase_lands_closer_than_an_unrelated_text()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Memory:Embeddings:Kind", "minilm");
        var client = OpenAiClientFor(host).GetEmbeddingClient(MiniLm);

        var result = await client.GenerateEmbeddingsAsync(
            ["How do I reset my password?", "I forgot my login password, how can I change it?", "The invoice for March is overdue"]);
        var embeddings = result.Value;

        Assert.Equal(MiniLm, embeddings.Model);
        Assert.Equal([0, 1, 2], embeddings.Select(e => e.Index));
        var vectors = embeddings.Select(e => e.ToFloats().ToArray()).ToList();
        Assert.All(vectors, v => Assert.Equal(384, v.Length));
        Assert.All(vectors, v => Assert.Equal(1.0, TensorPrimitives.Norm(v), tolerance: 1e-5));
        var paraphrase = TensorPrimitives.Dot(vectors[0], vectors[1]);
        var unrelated = TensorPrimitives.Dot(vectors[0], vectors[2]);
        Assert.True(paraphrase > unrelated + 0.3, $"paraphrase {paraphrase:F3} vs unrelated {unrelated:F3}");
        // Word pieces read: the 22 words, the punctuation, and [CLS] and [SEP] of each text.
        Assert.InRange(embeddings.Usage.InputTokenCount, 22 + 2 + 6, 60);
        Assert.Equal(embeddings.Usage.InputTokenCount, embeddings.Usage.TotalTokenCount);

        // The bare model name is the same embedder; the vector of a text does not depend on its batch.
        var single = await OpenAiClientFor(host).GetEmbeddingClient("all-MiniLM-L6-v2").GenerateEmbeddingAsync("How do I reset my password?");
        Assert.Equal(vectors[0], single.Value.ToFloats().ToArray(), (a, b) => Math.Abs(a - b) < 1e-5);
    }

    [Fact]
    public async Task Base64_carries_the_little_endian_bytes_of_the_same_floats()
    {
        const string Body = """{"model": "hashed-ngrams@768", "input": ["Invoice 4471 is overdue", "Lyon closes at six"], "encoding_format": "%"}""";

        var (floatStatus, floats) = await PostAsync(limited.Host, Body.Replace("%", "float", StringComparison.Ordinal));
        var (base64Status, base64) = await PostAsync(limited.Host, Body.Replace("%", "base64", StringComparison.Ordinal));

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (floatStatus, base64Status));
        Assert.Equal("list", floats["object"]!.GetValue<string>());
        Assert.Equal(Hashed, base64["model"]!.GetValue<string>());
        // The hashed embedder counts the words it hashes.
        Assert.Equal(8, JsonAssert.WholeNumber(base64["usage"]!["prompt_tokens"]));
        for (var i = 0; i < 2; i++)
        {
            var asFloats = floats["data"]![i]!["embedding"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
            var bytes = Convert.FromBase64String(base64["data"]![i]!["embedding"]!.GetValue<string>());
            Assert.Equal("embedding", base64["data"]![i]!["object"]!.GetValue<string>());
            Assert.Equal(i, JsonAssert.WholeNumber(base64["data"]![i]!["index"]));
            Assert.Equal(768, asFloats.Length);
            Assert.Equal(asFloats, MemoryMarshal.Cast<byte, float>(bytes).ToArray());
        }
    }

    [Theory]
    [InlineData("""{"model": "hashed-ngrams@768", "input": [[101, 2054]]}""", "input", "input: token arrays are not accepted")]
    [InlineData("""{"model": "hashed-ngrams@768", "input": [101, 2054]}""", "input", "input: token arrays are not accepted")]
    [InlineData("""{"model": "hashed-ngrams@768", "input": ["fine", {"text": "no"}]}""", "input", "input[1]: must be a string")]
    [InlineData("""{"model": "hashed-ngrams@768"}""", "input", "input: is required")]
    [InlineData("""{"model": "hashed-ngrams@768", "input": ""}""", "input", "input[0]: must not be empty")]
    [InlineData("""{"model": "hashed-ngrams@768", "input": []}""", "input", "input: must hold at least one text")]
    [InlineData("""{"model": "hashed-ngrams@768", "input": ["a", "b", "c", "d", "e"]}""", "input", "input: 5 texts, the limit is 4 (Memory:EmbedMaxInputs)")]
    [InlineData("""{"input": "hello"}""", "model", "model: is required; use 'hashed-ngrams@768'")]
    [InlineData("""{"model": "text-embedding-3-small", "input": "hello"}""", "model", "model: 'text-embedding-3-small' is not this platform's embedder; use 'hashed-ngrams@768'")]
    [InlineData("""{"model": "hashed-ngrams", "input": "hello", "dimensions": 256}""", "dimensions", "dimensions: hashed-ngrams@768 gives 768 dimensions, not 256")]
    [InlineData("""{"model": "hashed-ngrams", "input": "hello", "encoding_format": "binary"}""", "encoding_format", "encoding_format: must be \"float\" or \"base64\"")]
    [InlineData("""{"model": "hashed-ngrams", "input": "hello", "user": 7}""", "user", "user: must be a string")]
    [InlineData("""["hello"]""", null, "body: must be a JSON object")]
    public async Task Bad_input_is_refused_with_an_openai_error_naming_the_field(string body, string? param, string message)
    {
        var (status, reply) = await PostAsync(limited.Host, body);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = reply["error"]!;
        Assert.StartsWith(message, error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]?.GetValue<string>());
        Assert.NotNull(error["code"]);
    }

    [Fact]
    public async Task Texts_past_the_character_limits_are_refused_and_the_official_client_reads_the_error()
    {
        var client = OpenAiClientFor(limited.Host).GetEmbeddingClient(Hashed);

        var tooLong = await Assert.ThrowsAsync<ClientResultException>(() => client.GenerateEmbeddingsAsync(["short", new string('x', SmallLimitsHost.MaxInputCharacters + 1)]));
        var tooMuch = await Assert.ThrowsAsync<ClientResultException>(() => client.GenerateEmbeddingsAsync([.. Enumerable.Repeat(new string('x', 90), 3)]));
        var tokens = await Assert.ThrowsAsync<ClientResultException>(() => client.GenerateEmbeddingsAsync([new ReadOnlyMemory<int>([101, 2054, 102])]));
        var withinLimits = await client.GenerateEmbeddingsAsync([.. Enumerable.Repeat(new string('x', 60), SmallLimitsHost.MaxInputs)]);

        Assert.Equal(400, tooLong.Status);
        Assert.Contains("input[1]: is 101 characters, the limit is 100 (Memory:EmbedMaxInputCharacters)", tooLong.Message, StringComparison.Ordinal);
        Assert.Equal(400, tooMuch.Status);
        Assert.Contains("input: 270 characters in all, the limit is 250 (Memory:EmbedMaxTotalCharacters)", tooMuch.Message, StringComparison.Ordinal);
        Assert.Equal(400, tokens.Status);
        Assert.Contains("input: token arrays are not accepted", tokens.Message, StringComparison.Ordinal);
        Assert.Equal(SmallLimitsHost.MaxInputs, withinLimits.Value.Count);
    }

    [Fact]
    public async Task With_keys_required_a_call_without_a_valid_key_is_refused_and_a_key_is_held_to_its_rate_limit()
    {
        const string AdminKey = "test-admin-key-0123456789";
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Auth:Mode", "keys", "--Auth:AdminKey", AdminKey);
        const string Body = """{"model": "hashed-ngrams@768", "input": "Invoice 4471 is overdue"}""";

        var (anonymous, _) = await PostAsync(host, Body);
        var wrongKey = await Assert.ThrowsAsync<ClientResultException>(() => OpenAiClientFor(host, "pa_not-a-key").GetEmbeddingClient(Hashed).GenerateEmbeddingAsync("hello"));
        var (adminStatus, _) = await PostAsync(host, Body, AdminKey);
        using var create = new HttpRequestMessage(HttpMethod.Post, "/admin/keys") { Content = new StringContent("""{"tenant": "acme", "requestsPerMinute": 1}""", Encoding.UTF8, "application/json") };
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var created = await host.Rest.SendAsync(create);
        var userKey = (await TestHost.ReadObjectAsync(created))["key"]!.GetValue<string>();
        var first = await OpenAiClientFor(host, userKey).GetEmbeddingClient(Hashed).GenerateEmbeddingAsync("hello");
        var (secondStatus, _) = await PostAsync(host, Body, userKey);

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous);
        Assert.Equal(401, wrongKey.Status);
        Assert.Equal(HttpStatusCode.OK, adminStatus);
        Assert.Equal(768, first.Value.ToFloats().Length);
        Assert.Equal(HttpStatusCode.TooManyRequests, secondStatus);
    }
}
