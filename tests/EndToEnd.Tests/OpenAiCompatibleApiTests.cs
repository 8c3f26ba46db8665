using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using OpenAI.Chat;
using static PersistentAgents.EndToEnd.Tests.OpenAiTestSupport;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>The OpenAI chat-completions API (non-streamed), called with the official OpenAI .NET client and raw HTTP.</summary>
public sealed class OpenAiCompatibleApiTests(OpenAiCompatibleApiTests.SharedHost shared) : IClassFixture<OpenAiCompatibleApiTests.SharedHost>
{
    /// <summary>One host for the tests that leave nothing behind that another could see (refusals).</summary>
    public sealed class SharedHost : IAsyncLifetime
    {
        public TestHost Host { get; private set; } = null!;

        public async Task InitializeAsync() => Host = await TestHost.StartAsync(TestHost.NewDataDir(), ToolCatalog);

        public async Task DisposeAsync() => await Host.DisposeAsync();
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
    public async Task Models_lists_the_catalog_as_provider_slash_model_ids_with_context_window_and_capabilities()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), ToolCatalog);

        var models = (await OpenAiClientFor(host).GetOpenAIModelClient().GetModelsAsync()).Value;

        Assert.Equal(["sim-best/best", "sim-fair/fair", "sim-poor/poor"], models.Select(m => m.Id));
        Assert.All(models, m => Assert.Equal(m.Id.Split('/')[0], m.OwnedBy));
        var listed = (await host.GetAsync("/v1/models"))["data"]!.AsArray().Select(m => m!.AsObject()).ToDictionary(m => m["id"]!.GetValue<string>());
        Assert.Equal(["streaming", "json", "tools"], listed["sim-best/best"]["capabilities"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.Equal(["streaming"], listed["sim-poor/poor"]["capabilities"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.All(listed.Values, m => Assert.True(m["context_window"]!.GetValue<int>() > 0));
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
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), ToolCatalog);
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

        // Other sampling, end user or tools; the same ones in another order, with parameters that cannot change the answer, hit.
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"temperature":0.2,"seed":7,"user":"dana"}"""));
        Assert.Equal("true", await CacheHitAsync(host, "sim-best/best", first, """{"seed":7, "stream":false,"user":"dana","temperature":0.2,"metadata":{"ticket":"1"},"store":false}"""));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"seed":7,"user":"someone-else","temperature":0.2}"""));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"temperature":0.9,"seed":7,"user":"dana"}"""));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"temperature":0.2,"seed":7,"user":"dana","max_tokens":50}"""));
        Assert.Equal("false", await CacheHitAsync(host, "sim-best/best", first, """{"temperature":0.2,"seed":7,"user":"dana","tools":[{"type":"function","function":{"name":"refund"}}],"tool_choice":"none"}"""));
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
    [InlineData("""{"model":"auto","messages":[{"role":"function","content":"hi"}]}""", "messages[0].role", "messages[0].role: must be")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"a"},{"role":"user"}]}""", "messages[1].content", "messages[1].content: is required")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", "messages[0].content[0].type", "only \"text\" parts")]
    [InlineData("""{"model":"auto","messages":[{"role":"tool","content":"hi"}]}""", "messages[0].tool_call_id", "messages[0].tool_call_id: is required")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"a"},{"role":"tool","tool_call_id":"call_9","content":"{}"}]}""", "messages[1].tool_call_id", "answers no tool call")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"arguments":"{}"}}]}]}""", "messages[1].tool_calls[0].function.name", "messages[1].tool_calls[0].function.name: is required")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"n":3}""", "n", "n: only 1")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", "stream", "stream: must be a boolean")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}""", "stream_options", "only allowed when stream is true")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":1}}""", "stream_options.include_usage", "must be a boolean")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":{}}""", "tools", "tools: must be an array")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"description":"x"}}]}""", "tools[0].function.name", "tools[0].function.name: is required")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"retrieval"}]}""", "tools[0].type", "tools[0].type: must be \"function\"")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a b"}}]}""", "tools[0].function.name", "letters, digits")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}]}""", "tools[1].function.name", "declared twice")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a","parameters":"{}"}}]}""", "tools[0].function.parameters", "must be a JSON schema object")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tool_choice":"sometimes"}""", "tool_choice", "tool_choice: must be")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}""", "tool_choice", "needs tools")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}""", "tool_choice.function.name", "is not one of the request's tools")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":"yes"}""", "parallel_tool_calls", "must be a boolean")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"xml"}}""", "response_format.type", "response_format.type: must be")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema"}}""", "response_format.json_schema", "is required")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}""", "response_format.json_schema.name", "is required")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"temperature":3}""", "temperature", "temperature: must be from 0 to 2")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}""", "temperature", "temperature: must be a number")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"top_p":-0.1}""", "top_p", "top_p: must be from 0 to 1")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"presence_penalty":2.5}""", "presence_penalty", "must be from -2 to 2")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"frequency_penalty":-3}""", "frequency_penalty", "must be from -2 to 2")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"max_tokens":0}""", "max_tokens", "max_tokens: must be from 1")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":"many"}""", "max_completion_tokens", "must be an integer")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"max_tokens":10,"max_completion_tokens":20}""", "max_tokens", "give one of them")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"seed":1.5}""", "seed", "seed: must be an integer")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}""", "stop", "the limit is 4")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"stop":[""]}""", "stop[0]", "must be a non-empty string")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}],"user":42}""", "user", "user: must be a string")]
    [InlineData("""{"model":"agent/Billing","messages":[{"role":"user","content":"hi"}]}""", "model", "is not an agent name")]
    [InlineData("""{"model":"agent/","messages":[{"role":"user","content":"hi"}]}""", "model", "is not an agent name")]
    [InlineData("""{"model":"agent/billing","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}]}""", "tools", "calls no tools")]
    [InlineData("""{"model":"agent/billing","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"t","schema":{}}}}""", "response_format", "not a json_schema")]
    [InlineData("""{"model":"agent/billing","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Sure:"}]}""", "messages[1].role", "must be the user's")]
    [InlineData("""{"model":"agent/billing","messages":[{"role":"user","content":"   "}]}""", "messages[0].content", "messages[0].content: must not be empty")]
    public async Task Bad_input_is_a_400_in_the_openai_error_shape_naming_the_field(string json, string param, string message)
    {
        var host = shared.Host;

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
        var host = shared.Host;

        var (status, body) = await PostAsync(host, json);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, body["error"]!["param"]?.GetValue<string>());
        Assert.StartsWith("body: ", body["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("x-pa-agent", "Billing")]
    [InlineData("x-pa-agent", "../etc")]
    [InlineData("x-pa-task-type", "a-very-long-task-type-name-that-goes-on-and-on-well-past-sixty-four-chars")]
    [InlineData("x-pa-session", "a session")]
    public async Task A_bad_agent_task_type_or_session_header_is_a_400_naming_the_header(string header, string value)
    {
        var host = shared.Host;

        var (status, body) = await PostAsync(host, """{"model":"auto","messages":[{"role":"user","content":"hi"}]}""", (header, value));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(header, body["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_official_client_sees_a_bad_model_as_a_400()
    {
        var host = shared.Host;

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

    [Fact]
    public async Task An_agent_over_its_budget_is_a_429_insufficient_quota_on_both_kinds_of_model()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Budgets:DailyUsdByAgent:pauper", "0.0000001");

        var (status, body) = await PostAsync(host, """{"model":"auto","messages":[{"role":"user","content":"hi"}]}""", ("x-pa-agent", "pauper"));
        var (agentStatus, agentBody) = await PostAsync(host, """{"model":"agent/pauper","messages":[{"role":"user","content":"hi"}]}""");
        var streamed = await StreamAsync(host, """{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}""", ("x-pa-agent", "pauper"));

        foreach (var (answered, error) in new[] { (status, body), (agentStatus, agentBody), (streamed.Response.StatusCode, JsonNode.Parse(streamed.Raw)!.AsObject()) })
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, answered);
            Assert.Equal("insufficient_quota", error["error"]!["type"]!.GetValue<string>());
            Assert.Equal("budget_exceeded", error["error"]!["code"]!.GetValue<string>());
            Assert.Contains("daily budget", error["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        Assert.Equal("application/json", streamed.Response.Content.Headers.ContentType!.MediaType);
        var official = await Assert.ThrowsAsync<ClientResultException>(() =>
            OpenAiClientFor(host).GetChatClient("agent/pauper").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(429, official.Status);
    }

    [Theory]
    [InlineData("POST", "/v1/responses")]
    [InlineData("GET", "/v1/responses/resp_123")]
    [InlineData("POST", "/v1/assistants")]
    [InlineData("GET", "/v1/chat/completions")]
    public async Task The_responses_api_and_other_v1_routes_are_a_404_openai_error_pointing_to_chat_completions(string method, string path)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path)
        {
            Content = method == "POST" ? new StringContent("""{"model":"auto","input":"hi"}""", Encoding.UTF8, "application/json") : null,
        };
        using var response = await shared.Host.Rest.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = (await TestHost.ReadObjectAsync(response))["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal("unsupported_endpoint", error["code"]!.GetValue<string>());
        Assert.Contains("/v1/chat/completions", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
