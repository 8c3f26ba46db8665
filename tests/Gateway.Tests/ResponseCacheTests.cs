using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Gateway.Tests;

public sealed class ResponseCacheTests
{
    private const string Email = """
        Hello, I ordered a blender with order {0} on March 3 and it arrived broken. The glass jug has a crack
        along the bottom and the lid does not close any more, so I have not been able to use it at all. I have
        attached photos of the cracked jug, the damaged box and the receipt from your shop. The courier left
        the parcel at my door without ringing, and the box was already dented when I found it. I would like to
        know what happens next, whether I need to send the blender back first, who pays for the return
        postage, and how long the whole process usually takes. I am away from the 20th for two weeks, so
        please let me know if anything needs to happen before then. Thank you for your help. Regards, Dana
        """;

    /// <summary>Prompts one detail apart: each pair must never share an answer.</summary>
    public static TheoryData<string, string> OneDetailApart => new()
    {
        { Email.Replace("{0}", "4471", StringComparison.Ordinal), Email.Replace("{0}", "4417", StringComparison.Ordinal) },
        { "The customer wants a refund, not a replacement, for order 4471.", "The customer wants a replacement, not a refund, for order 4471." },
        { "Quote the price of the blender for order 4471 with VAT included.", "Quote the price of the blender for order 4471 with VAT excluded." },
        { "Should I refund the customer for the broken blender?", "Should I not refund the customer for the broken blender?" },
        { "What is the weather in Paris today?", "What is the weather in Lyon today?" },
        { "Set the dose to 3.5 mg", "Set the dose to 35 mg" },
        { "How do I reset my password?", "Comment réinitialiser mon mot de passe ?" },
    };

    [Theory]
    [MemberData(nameof(OneDetailApart))]
    public async Task Prompts_one_detail_apart_miss_at_default_settings(string stored, string asked)
    {
        var cache = Cache(new ResponseCacheOptions(), new HashedNGramEmbedder());
        await StoreAsync(cache, Request(stored), "the stored answer");

        Assert.Equal(CacheHit.Exact, (await cache.LookupAsync(Request(stored), CancellationToken.None)).Hit);
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(Request(asked), CancellationToken.None)).Hit);
    }

    [Theory]
    [MemberData(nameof(OneDetailApart))]
    public async Task Prompts_one_detail_apart_miss_with_semantic_on_at_0_99_over_the_hashed_embedder(string stored, string asked)
    {
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, new HashedNGramEmbedder());
        await StoreAsync(cache, Request(stored), "the stored answer");

        Assert.Equal(CacheHit.None, (await cache.LookupAsync(Request(asked), CancellationToken.None)).Hit);
    }

    [Theory]
    [MemberData(nameof(OneDetailApart))]
    public async Task Prompts_one_detail_apart_miss_even_when_their_embeddings_are_identical(string stored, string asked)
    {
        // Every text one vector: similarity 1, so only the guard stands between the two prompts.
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, new StubEmbedder(_ => [1, 0, 0, 0]));
        await StoreAsync(cache, Request(stored), "the stored answer");

        Assert.Equal(CacheHit.None, (await cache.LookupAsync(Request(asked), CancellationToken.None)).Hit);
    }

    [Fact]
    public void The_long_emails_one_digit_apart_do_score_above_the_threshold_with_the_hashed_embedder()
    {
        // Why the threshold alone cannot be the defence (the test above relies on the guard for this pair).
        using var embedder = new HashedNGramEmbedder();
        var one = embedder.Embed(Email.Replace("{0}", "4471", StringComparison.Ordinal));
        var other = embedder.Embed(Email.Replace("{0}", "4417", StringComparison.Ordinal));

        var similarity = System.Numerics.Tensors.TensorPrimitives.Dot(one, other);
        Assert.True(similarity >= 0.99, $"cosine {similarity}");
    }

    [Fact]
    public async Task A_paraphrase_the_guard_passes_is_a_semantic_hit_over_a_model_embedder()
    {
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, new StubEmbedder(_ => [1, 0, 0, 0]));
        await StoreAsync(cache, Request("How do I reset my password?"), "Use the reset link.");

        var lookup = await cache.LookupAsync(Request("how can I reset my password"), CancellationToken.None);

        Assert.Equal((CacheHit.Semantic, "Use the reset link."), (lookup.Hit, lookup.Reply?.Text));
    }

    [Theory]
    [InlineData("Reset my password.", "  reset MY   password ")]
    [InlineData("Where does invoice 4471 go?", "\"where does invoice 4471 go\"")]
    [InlineData("Is it done?!", "is it done")]
    public async Task Case_spacing_final_punctuation_and_wrapping_quotes_are_exact_hits(string stored, string asked)
    {
        var cache = Cache(new ResponseCacheOptions(), new HashedNGramEmbedder());
        await StoreAsync(cache, Request(stored), "the stored answer");

        Assert.Equal(CacheHit.Exact, (await cache.LookupAsync(Request(asked), CancellationToken.None)).Hit);
    }

    [Fact]
    public async Task A_json_request_does_not_get_the_text_reply_cached_for_the_same_prompt()
    {
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, new StubEmbedder(_ => [1, 0, 0, 0]));
        await StoreAsync(cache, Request("List the open invoices"), "Invoice 4471 and invoice 4417.");

        var json = Request("List the open invoices");
        json.ResponseFormat = "json";
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(json, CancellationToken.None)).Hit);

        var schema = Request("List the open invoices");
        schema.AnswerParameters = """{"response_format":{"type":"json_schema","json_schema":{"name":"invoices"}}}""";
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(schema, CancellationToken.None)).Hit);
    }

    [Fact]
    public async Task A_request_for_one_model_does_not_get_the_reply_another_model_made()
    {
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, new StubEmbedder(_ => [1, 0, 0, 0]));
        await StoreAsync(cache, Request("Where does invoice 4471 go?", "openai", "gpt-a"), "from model a");

        Assert.Equal(CacheHit.None, (await cache.LookupAsync(Request("Where does invoice 4471 go?", "openai", "gpt-b"), CancellationToken.None)).Hit);
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(Request("Where does invoice 4471 go?", "anthropic", "gpt-a"), CancellationToken.None)).Hit);
        Assert.Equal(CacheHit.Exact, (await cache.LookupAsync(Request("Where does invoice 4471 go?", "openai", "gpt-a"), CancellationToken.None)).Hit);
    }

    [Theory]
    [InlineData("""{"temperature":1.2}""")]
    [InlineData("""{"temperature":0.2,"tools":[{"type":"function","function":{"name":"lookup_invoice"}}]}""")]
    [InlineData("""{"seed":7,"temperature":0.2}""")]
    public async Task Other_sampling_or_tools_miss(string parameters)
    {
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, new StubEmbedder(_ => [1, 0, 0, 0]));
        var stored = Request("Where does invoice 4471 go?");
        stored.AnswerParameters = """{"temperature":0.2}""";
        await StoreAsync(cache, stored, "the stored answer");

        var asked = Request("Where does invoice 4471 go?");
        asked.AnswerParameters = parameters;
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(asked, CancellationToken.None)).Hit);
    }

    [Fact]
    public async Task The_requests_own_settings_tools_schema_and_tool_results_are_part_of_the_key()
    {
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, new StubEmbedder(_ => [1, 0, 0, 0]));
        var stored = Request("Where does invoice 4471 go?");
        await StoreAsync(cache, stored, "the stored answer");

        var hotter = Request("Where does invoice 4471 go?");
        hotter.Options = new CompletionOptions { Temperature = 1.5 };
        var withTool = Request("Where does invoice 4471 go?");
        withTool.Tools.Add(new ToolDefinition { Name = "lookup_invoice" });
        var withSchema = Request("Where does invoice 4471 go?");
        withSchema.ResponseFormat = "json";
        withSchema.JsonSchema = """{"type":"object"}""";
        foreach (var asked in new[] { hotter, withTool, withSchema })
        {
            Assert.Equal(CacheHit.None, (await cache.LookupAsync(asked, CancellationToken.None)).Hit);
        }

        // A tool's result is data: one that differs only in case is another result, never a hit.
        var result = Request("Where does invoice 4471 go?");
        result.Messages.Add(new ChatMessage { Role = "assistant", ToolCalls = { new ToolCall { Id = "call_1", Name = "lookup_invoice", ArgumentsJson = """{"id":"4471"}""" } } });
        result.Messages.Add(new ChatMessage { Role = "tool", ToolCallId = "call_1", Content = "Status: PAID" });
        await StoreAsync(cache, result, "It is paid.");
        var otherCase = result.Clone();
        otherCase.Messages[^1].Content = "status: paid";
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(otherCase, CancellationToken.None)).Hit);
        var otherCall = result.Clone();
        otherCall.Messages[^2].ToolCalls[0].ArgumentsJson = """{"id":"4417"}""";
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(otherCall, CancellationToken.None)).Hit);
        Assert.Equal(CacheHit.Exact, (await cache.LookupAsync(result.Clone(), CancellationToken.None)).Hit);
    }

    [Fact]
    public async Task A_miss_embeds_its_question_once_and_stores_the_lookups_vector()
    {
        using var embedder = new StubEmbedder(_ => [1, 0, 0, 0]);
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, embedder);
        await StoreAsync(cache, Request("How do I reset my password?"), "Use the reset link.");
        Assert.Equal(1, embedder.Calls); // nothing to compare with yet: embedded once, when stored

        await StoreAsync(cache, Request("How do I close my account?"), "Write to support.");
        Assert.Equal(2, embedder.Calls); // embedded for the lookup, and that vector stored
    }

    [Fact]
    public async Task The_callers_question_embedding_is_used_when_it_comes_from_the_caches_embedder_and_has_its_length()
    {
        using var embedder = new StubEmbedder(_ => [1, 0, 0, 0]);
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, embedder);
        var stored = Request("How do I reset my password?");
        stored.QuestionEmbedderId = "test-model@4";
        stored.QuestionEmbedding.Add([2, 0, 0, 0]);
        await StoreAsync(cache, stored, "Use the reset link.");
        var asked = Request("how can I reset my password");
        asked.QuestionEmbedderId = "test-model@4";
        asked.QuestionEmbedding.Add([0.5f, 0, 0, 0]);

        Assert.Equal(CacheHit.Semantic, (await cache.LookupAsync(asked, CancellationToken.None)).Hit);
        Assert.Equal(0, embedder.Calls);
    }

    [Theory]
    [InlineData("other-model@4", 4)]
    [InlineData("test-model@4", 3)]
    public async Task The_callers_question_embedding_is_ignored_from_another_embedder_or_of_another_length(string embedderId, int length)
    {
        using var embedder = new StubEmbedder(_ => [1, 0, 0, 0]);
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, embedder);
        await StoreAsync(cache, Request("How do I reset my password?"), "Use the reset link.");
        var asked = Request("how can I reset my password");
        asked.QuestionEmbedderId = embedderId;
        asked.QuestionEmbedding.Add(Enumerable.Repeat(0f, length - 1).Prepend(-1f));

        // Had the caller's vector (opposite to the stored one) been used, this would be a miss.
        Assert.Equal(CacheHit.Semantic, (await cache.LookupAsync(asked, CancellationToken.None)).Hit);
        Assert.Equal(2, embedder.Calls);
    }

    [Fact]
    public async Task A_question_the_embedder_truncated_is_never_a_semantic_hit_nor_a_semantic_candidate()
    {
        using var embedder = new StubEmbedder(_ => [1, 0, 0, 0], truncates: true);
        var cache = Cache(new ResponseCacheOptions { Semantic = true }, embedder);
        await StoreAsync(cache, Request("How do I reset my password?"), "Use the reset link.");

        Assert.Equal(0, cache.Contexts);
        Assert.Equal(CacheHit.Exact, (await cache.LookupAsync(Request("How do I reset my password?"), CancellationToken.None)).Hit);
        Assert.Equal(CacheHit.None, (await cache.LookupAsync(Request("how can I reset my password"), CancellationToken.None)).Hit);
    }

    [Fact]
    public void Semantic_caching_over_the_hashed_embedder_is_refused_saying_why()
    {
        var validation = new ResponseCacheOptionsValidation(new HashedNGramEmbedder());

        var refused = validation.Validate(null, new ResponseCacheOptions { Semantic = true });

        Assert.True(refused.Failed);
        Assert.Contains("Cache:Semantic: the hashed n-gram embedder is lexical: prompts that differ in one number score above any threshold", refused.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Memory:Embeddings:Kind=minilm", refused.FailureMessage, StringComparison.Ordinal);
        Assert.True(validation.Validate(null, new ResponseCacheOptions()).Succeeded);
        Assert.True(validation.Validate(null, new ResponseCacheOptions { Semantic = true, Enabled = false }).Succeeded);
        Assert.True(new ResponseCacheOptionsValidation(new StubEmbedder(_ => [1, 0, 0, 0])).Validate(null, new ResponseCacheOptions { Semantic = true }).Succeeded);
    }

    [Theory]
    [InlineData(0.8)]
    [InlineData(1.01)]
    [InlineData(double.NaN)]
    public void A_semantic_threshold_outside_0_9_to_1_is_refused_naming_the_setting(double threshold)
    {
        var refused = new ResponseCacheOptionsValidation(new StubEmbedder(_ => [1, 0, 0, 0])).Validate(null, new ResponseCacheOptions { SemanticThreshold = threshold });

        Assert.True(refused.Failed);
        Assert.StartsWith("Cache:SemanticThreshold: must be from 0.9 to 1", refused.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void The_defaults_are_semantic_off_at_0_99()
    {
        var defaults = new ResponseCacheOptions();

        Assert.Equal((true, false, 0.99), (defaults.Enabled, defaults.Semantic, defaults.SemanticThreshold));
    }

    private static ResponseCache Cache(ResponseCacheOptions options, Microsoft.Extensions.AI.IEmbeddingGenerator<string, Microsoft.Extensions.AI.Embedding<float>> embedder) =>
        new(embedder, Options.Create(options), new FakeTimeProvider());

    private static async Task StoreAsync(ResponseCache cache, GatewayRequest request, string answer)
    {
        var lookup = await cache.LookupAsync(request, CancellationToken.None);
        Assert.Equal(CacheHit.None, lookup.Hit);
        await cache.StoreAsync(request, lookup, new GatewayReply { Success = true, Text = answer }, CancellationToken.None);
    }

    private static GatewayRequest Request(string question, string provider = "openai", string model = "gpt-a")
    {
        var request = new GatewayRequest { Tenant = "default", Agent = "agent", TaskType = "general" };
        request.Candidates.Add(new ArmRef { Provider = provider, Model = model });
        request.Messages.Add(new ChatMessage { Role = "system", Content = "You answer customer e-mail." });
        request.Messages.Add(new ChatMessage { Role = "user", Content = question });
        return request;
    }
}
