using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using OpenAI;
using OpenAI.Chat;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>The gateway's OpenAI chat-completions face, called with the official OpenAI .NET client and raw HTTP.</summary>
public sealed class OpenAiCompatibleApiTests
{
    private static OpenAIClient OpenAiClientFor(TestHost host) => new(
        new ApiKeyCredential("any-key-the-gateway-ignores"),
        new OpenAIClientOptions { Endpoint = new Uri(host.Rest.BaseAddress!, "v1"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) });

    private static async Task<(HttpStatusCode Status, JsonObject Body)> PostAsync(TestHost host, string json, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await host.Rest.SendAsync(request);
        return (response.StatusCode, await TestHost.ReadObjectAsync(response));
    }

    [Fact]
    public async Task The_official_openai_client_gets_a_chat_completion_with_usage_and_the_gateway_headers()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var chat = OpenAiClientFor(host).GetChatClient("sim-best/best");

        var result = await chat.CompleteChatAsync(
            [new SystemChatMessage("You route customer e-mail."), new UserChatMessage("A customer disputes invoice 4471")]);
        var completion = result.Value;

        Assert.StartsWith("chatcmpl-", completion.Id, StringComparison.Ordinal);
        Assert.Equal("sim-best/best", completion.Model);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Contains("[simulated sim-best/best]", completion.Content[0].Text, StringComparison.Ordinal);
        Assert.Contains("invoice 4471", completion.Content[0].Text, StringComparison.Ordinal);
        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.True(completion.Usage.OutputTokenCount > 0);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
        Assert.InRange((DateTimeOffset.UtcNow - completion.CreatedAt).TotalMinutes, -1, 1);

        var headers = result.GetRawResponse().Headers;
        Assert.True(headers.TryGetValue("x-pa-provider", out var provider));
        Assert.Equal("sim-best", provider);
        Assert.True(headers.TryGetValue("x-pa-simulated", out var simulated));
        Assert.Equal("true", simulated);
        Assert.True(headers.TryGetValue("x-pa-cache-hit", out var cacheHit));
        Assert.Equal("false", cacheHit);
        Assert.True(headers.TryGetValue("x-pa-cost-usd", out var cost));
        var expectedCost = ((completion.Usage.InputTokenCount * 1.0) + (completion.Usage.OutputTokenCount * 2.0)) / 1_000_000;
        Assert.Equal(expectedCost, double.Parse(cost!, System.Globalization.CultureInfo.InvariantCulture), 12);
    }

    [Theory]
    [InlineData("sim-poor/poor", "sim-poor", "sim-poor/poor")]
    [InlineData("fair", "sim-fair", "sim-fair/fair")]
    [InlineData("auto", "sim-best", "sim-best/best")]
    public async Task The_model_picks_the_arm_a_bare_name_or_the_whole_catalog_in_order(string model, string provider, string answeredBy)
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var result = await OpenAiClientFor(host).GetChatClient(model).CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal(answeredBy, result.Value.Model);
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-pa-provider", out var header));
        Assert.Equal(provider, header);
        Assert.Contains($"[simulated {answeredBy}]", result.Value.Content[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_lists_the_catalog_as_provider_slash_model_ids()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var models = (await OpenAiClientFor(host).GetOpenAIModelClient().GetModelsAsync()).Value;

        Assert.Equal(["sim-best/best", "sim-fair/fair", "sim-poor/poor"], models.Select(m => m.Id));
        Assert.All(models, m => Assert.Equal(m.Id.Split('/')[0], m.OwnedBy));
    }

    [Fact]
    public async Task Raw_json_in_the_openai_shape_with_gateway_headers_and_text_parts()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var (status, body) = await PostAsync(host, """
            {"model":"sim-fair/fair","temperature":0.2,"stream":false,"n":1,
             "messages":[{"role":"developer","content":"Be brief."},
                         {"role":"user","content":[{"type":"text","text":"first part"},{"type":"text","text":"second part"}]}]}
            """,
            ("x-pa-agent", "billing_bot-2"), ("x-pa-task-type", "email_routing"), ("Cache-Control", "no-cache"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("chat.completion", body["object"]!.GetValue<string>());
        Assert.Equal("sim-fair/fair", body["model"]!.GetValue<string>());
        var choice = body["choices"]!.AsArray().Single()!;
        Assert.Equal(0, choice["index"]!.GetValue<int>());
        Assert.Equal("stop", choice["finish_reason"]!.GetValue<string>());
        Assert.Equal("assistant", choice["message"]!["role"]!.GetValue<string>());
        var text = choice["message"]!["content"]!.GetValue<string>();
        Assert.Contains("email_routing", text, StringComparison.Ordinal); // the task type header reached the provider
        Assert.Contains("first part second part", text, StringComparison.Ordinal);
        var usage = body["usage"]!;
        Assert.Equal(usage["prompt_tokens"]!.GetValue<long>() + usage["completion_tokens"]!.GetValue<long>(), usage["total_tokens"]!.GetValue<long>());
    }

    [Fact]
    public async Task The_response_cache_hits_only_the_same_request_up_to_case_spacing_and_final_punctuation()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        const string email = "Hello, order {0} arrived broken. I want a refund, not a replacement. Regards, Dana";
        var first = email.Replace("{0}", "4471", StringComparison.Ordinal);

        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first));
        Assert.Equal("true", await CacheHitAsync(host, "sim-best/best", first));
        Assert.Equal("true", await CacheHitAsync(host, "sim-best/best", "  " + first.ToUpperInvariant().Replace(" ", "   ", StringComparison.Ordinal) + "!"));

        // One detail apart, at default settings.
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", email.Replace("{0}", "4417", StringComparison.Ordinal)));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first.Replace("a refund, not a replacement", "a replacement, not a refund", StringComparison.Ordinal)));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", "Quote the price of order 4471 with VAT included."));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", "Quote the price of order 4471 with VAT excluded."));

        // Another model, another candidate list, another reply format.
        Assert.Equal("false", await CacheHitAsync(host, "sim-poor/poor", first));
        Assert.Equal("false", await CacheHitAsync(host, "auto", first));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"response_format":{"type":"json_object"}}"""));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"response_format":{"type":"json_schema","json_schema":{"name":"ticket","schema":{"type":"object"}}}}"""));

        // Other sampling or tools; the same ones in another order, with parameters that cannot change the answer, hit.
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"temperature":0.2,"seed":7,"user":"dana"}"""));
        Assert.Equal("true", await CacheHitAsync(host, "sim-best/best", first, """{"seed":7, "stream":false,"user":"someone-else","temperature":0.2,"metadata":{"ticket":"1"}}"""));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"temperature":0.9,"seed":7}"""));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"temperature":0.2,"seed":7,"tools":[{"type":"function","function":{"name":"refund"}}]}"""));
    }

    [Fact]
    public async Task A_host_with_semantic_caching_over_the_hashed_embedder_refuses_to_start_saying_why()
    {
        // Whichever comes first, building the host (the dashboard takes the gateway) or starting it, refuses.
        var refusal = await Assert.ThrowsAsync<OptionsValidationException>(() => TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Cache:Semantic", "true"));

        Assert.Contains("Cache:Semantic: the hashed n-gram embedder is lexical", refusal.Message, StringComparison.Ordinal);
    }

    /// <summary>The x-pa-cache-hit header of a completion for one user message; the body is <paramref name="parameters"/>, in its order, then the model and the message.</summary>
    private static async Task<string> CacheHitAsync(TestHost host, string model, string content, string parameters = "{}")
    {
        var body = JsonNode.Parse(parameters)!.AsObject();
        body["model"] = model;
        body["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        using var response = await host.Rest.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answeredBy = (await TestHost.ReadObjectAsync(response))["model"]!.GetValue<string>();
        Assert.Equal(model == "auto" ? "sim-best/best" : model, answeredBy);
        return Assert.Single(response.Headers.GetValues("x-pa-cache-hit"));
    }

    [Theory]
    [InlineData("""{"model":"nope/none","messages":[{"role":"user","content":"hi"}]}""", "model", "not in the catalog")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model", "model: is required")]
    [InlineData("""{"model":42,"messages":[{"role":"user","content":"hi"}]}""", "model", "model: must be a string")]
    [InlineData("""{"model":"auto"}""", "messages", "messages: is required")]
    [InlineData("""{"model":"auto","messages":[]}""", "messages", "messages: must not be empty")]
    [InlineData("""{"model":"auto","messages":"hi"}""", "messages", "messages: must be an array")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"stream":true}""", "stream", "stream: streaming is not supported")]
    [InlineData("""{"model":"auto","messages":[{"role":"tool","content":"hi"}]}""", "messages[0].role", "messages[0].role: must be")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"a"},{"role":"user"}]}""", "messages[1].content", "messages[1].content: is required")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", "messages[0].content[0].type", "only \"text\" parts")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"n":3}""", "n", "n: only 1")]
    public async Task Bad_input_is_a_400_in_the_openai_error_shape_naming_the_field(string json, string param, string message)
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var (status, body) = await PostAsync(host, json);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = body["error"]!.AsObject();
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.Contains(message, error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.True(error.ContainsKey("code"));
    }

    [Theory]
    [InlineData("not json", null)]
    [InlineData("", null)]
    [InlineData("[1,2]", null)]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}]} {}""", null)]
    public async Task A_body_that_is_not_one_json_object_is_a_400(string json, string? param)
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var (status, body) = await PostAsync(host, json);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, body["error"]!["param"]?.GetValue<string>());
        Assert.StartsWith("body: ", body["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("x-pa-agent", "Billing")]
    [InlineData("x-pa-agent", "../etc")]
    [InlineData("x-pa-task-type", "a-very-long-task-type-name-that-goes-on-and-on-well-past-sixty-four-chars")]
    public async Task A_bad_agent_or_task_type_header_is_a_400_naming_the_header(string header, string value)
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var (status, body) = await PostAsync(host, """{"model":"auto","messages":[{"role":"user","content":"hi"}]}""", (header, value));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(header, body["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_official_client_sees_a_bad_model_as_a_400()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var error = await Assert.ThrowsAsync<ClientResultException>(() =>
            OpenAiClientFor(host).GetChatClient("gpt-nothing").CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(400, error.Status);
        Assert.Contains("gpt-nothing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task When_every_candidate_fails_the_answer_is_a_503_listing_the_attempts()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), """
            simulated: always
            providers:
              - name: sim-broken
                kind: simulated
                models:
                  - name: broken
                    inputPricePerMTok: 1
                    outputPricePerMTok: 2
                    quality: 0.5
                    simulation: { quality: 0.5, failureRate: 1, latencyMs: 0 }
              - name: sim-down
                kind: simulated
                models:
                  - name: also-broken
                    inputPricePerMTok: 1
                    outputPricePerMTok: 2
                    quality: 0.5
                    simulation: { quality: 0.5, failureRate: 1, latencyMs: 0 }
            """);

        var (status, body) = await PostAsync(host, """{"model":"auto","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        var message = body["error"]!["message"]!.GetValue<string>();
        Assert.Contains("sim-broken/broken failed", message, StringComparison.Ordinal);
        Assert.Contains("sim-down/also-broken failed", message, StringComparison.Ordinal);
        Assert.Equal("server_error", body["error"]!["type"]!.GetValue<string>());

        var error = await Assert.ThrowsAsync<ClientResultException>(() =>
            OpenAiClientFor(host).GetChatClient("sim-broken/broken").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(503, error.Status);
    }
}
