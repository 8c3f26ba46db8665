using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using static PersistentAgents.EndToEnd.Tests.OpenAiTestSupport;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>JSON mode, JSON schemas and tool calls on the OpenAI chat-completions API, with the official client and raw HTTP.</summary>
public sealed class OpenAiToolsAndFormatsTests
{
    private const string LookupOrderParameters = """
        {"type":"object","properties":{"order_id":{"type":"string","description":"The order number"}},"required":["order_id"],"additionalProperties":false}
        """;

    private static readonly ChatTool LookupOrder = ChatTool.CreateFunctionTool(
        "lookup_order", "Finds an order's status by its number", BinaryData.FromString(LookupOrderParameters), functionSchemaIsStrict: true);

    private static readonly ChatTool RefundOrder = ChatTool.CreateFunctionTool(
        "refund_order", "Refunds an order", BinaryData.FromString("""{"type":"object","properties":{"order_id":{"type":"string"},"amount":{"type":"number"}},"required":["order_id","amount"]}"""));

    [Fact]
    public async Task Json_mode_goes_only_to_a_model_that_can_answer_json_and_the_reply_parses()
    {
        // Only sim-fair declares json: auto, which would start at sim-best, must answer from sim-fair.
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var result = await OpenAiClientFor(host).GetChatClient("auto").CompleteChatAsync(
            [new UserChatMessage("Route this e-mail as JSON: my parcel never arrived")],
            new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() });

        Assert.Equal("sim-fair/fair", result.Value.Model);
        using var reply = JsonDocument.Parse(result.Value.Content[0].Text);
        Assert.Equal(JsonValueKind.Object, reply.RootElement.ValueKind);
    }

    [Fact]
    public async Task A_json_schema_reply_satisfies_the_schema_nested_required_enum_and_no_extra_properties()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), ToolCatalog);
        const string schema = """
            {"type":"object",
             "properties":{
               "queue":{"type":"string","enum":["billing","shipping","other"]},
               "priority":{"type":"integer"},
               "customer":{"type":"object","properties":{"invoice":{"type":"string"},"vip":{"type":"boolean"}},"required":["invoice","vip"],"additionalProperties":false}},
             "required":["queue","priority","customer"],
             "additionalProperties":false}
            """;

        var result = await OpenAiClientFor(host).GetChatClient("auto").CompleteChatAsync(
            [new UserChatMessage("A customer disputes invoice 4471")],
            new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("ticket", BinaryData.FromString(schema), jsonSchemaIsStrict: true) });

        Assert.Equal("sim-best/best", result.Value.Model);
        var ticket = JsonNode.Parse(result.Value.Content[0].Text)!.AsObject();
        Assert.Equal(["customer", "priority", "queue"], ticket.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.True(ticket["queue"]!.GetValue<string>() is "billing" or "shipping" or "other");
        Assert.Equal(JsonValueKind.Number, ticket["priority"]!.GetValueKind());
        Assert.True(ticket["priority"]!.GetValue<JsonElement>().TryGetInt64(out _));
        var customer = ticket["customer"]!.AsObject();
        Assert.Equal(["invoice", "vip"], customer.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(JsonValueKind.String, customer["invoice"]!.GetValueKind());
        Assert.True(customer["vip"]!.GetValueKind() is JsonValueKind.True or JsonValueKind.False);
    }

    [Fact]
    public async Task The_model_calls_a_tool_the_client_answers_with_a_tool_message_and_the_model_answers_in_text()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), ToolCatalog);
        var chat = OpenAiClientFor(host).GetChatClient("auto");
        var options = new ChatCompletionOptions { Tools = { LookupOrder } };
        List<ChatMessage> messages = [new UserChatMessage("Where is my order 4471?")];

        var call = (await chat.CompleteChatAsync(messages, options)).Value;

        Assert.Equal("sim-best/best", call.Model); // the one model with tools
        Assert.Equal(ChatFinishReason.ToolCalls, call.FinishReason);
        var toolCall = Assert.Single(call.ToolCalls);
        Assert.Equal("lookup_order", toolCall.FunctionName);
        Assert.False(string.IsNullOrEmpty(toolCall.Id));
        using (var arguments = JsonDocument.Parse(toolCall.FunctionArguments))
        {
            Assert.Equal(JsonValueKind.String, arguments.RootElement.GetProperty("order_id").ValueKind);
        }

        messages.Add(new AssistantChatMessage(call));
        messages.Add(new ToolChatMessage(toolCall.Id, """{"order_id":"4471","status":"shipped on Monday"}"""));
        var answer = (await chat.CompleteChatAsync(messages, options)).Value;

        Assert.Equal(ChatFinishReason.Stop, answer.FinishReason);
        Assert.Empty(answer.ToolCalls);
        Assert.Contains("shipped on Monday", answer.Content[0].Text, StringComparison.Ordinal);
        Assert.True(answer.Usage.InputTokenCount > call.Usage.InputTokenCount, "the tool turn is part of the prompt");
    }

    [Fact]
    public async Task A_tool_call_reply_in_raw_json_has_null_content_and_openai_tool_calls_and_tool_choice_picks_the_tool()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), ToolCatalog);
        var tools = """[{"type":"function","function":{"name":"lookup_order","parameters":""" + LookupOrderParameters.Trim()
            + """}},{"type":"function","function":{"name":"refund_order","description":"Refunds an order","parameters":{"type":"object","properties":{"order_id":{"type":"string"}}}}}]""";

        var (status, body) = await PostAsync(host, $$$"""
            {"model":"sim-best/best","messages":[{"role":"user","content":"Refund order 4471"}],
             "tools":{{{tools}}},"tool_choice":{"type":"function","function":{"name":"refund_order"}},"parallel_tool_calls":false}
            """);
        var (_, none) = await PostAsync(host, $$$"""
            {"model":"sim-best/best","messages":[{"role":"user","content":"Refund order 4471"}],"tools":{{{tools}}},"tool_choice":"none"}
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        var choice = body["choices"]![0]!;
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        var message = choice["message"]!.AsObject();
        Assert.True(message.ContainsKey("content") && message["content"] is null);
        var call = message["tool_calls"]!.AsArray().Single()!;
        Assert.Equal("function", call["type"]!.GetValue<string>());
        Assert.Equal("refund_order", call["function"]!["name"]!.GetValue<string>());
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(call["function"]!["arguments"]!.GetValue<string>()).RootElement.ValueKind);
        Assert.True(body["usage"]!["x_pa_cost_usd"]!.GetValue<double>() > 0);

        Assert.Equal("stop", none["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.False(none["choices"]![0]!["message"]!.AsObject().ContainsKey("tool_calls"));
    }

    [Fact]
    public async Task A_streamed_tool_call_comes_as_one_openai_tool_call_delta_for_the_official_client_and_on_the_wire()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), ToolCatalog);

        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (var update in OpenAiClientFor(host).GetChatClient("auto").CompleteChatStreamingAsync(
            [new UserChatMessage("Where is my order 4471?")], new ChatCompletionOptions { Tools = { LookupOrder, RefundOrder } }))
        {
            updates.Add(update);
        }

        var call = Assert.Single(updates.SelectMany(u => u.ToolCallUpdates));
        Assert.Equal(0, call.Index);
        Assert.Equal("lookup_order", call.FunctionName); // the first declared tool
        Assert.False(string.IsNullOrEmpty(call.ToolCallId));
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(call.FunctionArgumentsUpdate.ToString()).RootElement.ValueKind);
        Assert.Equal(ChatFinishReason.ToolCalls, Assert.Single(updates, u => u.FinishReason is not null).FinishReason);

        var (_, events, _) = await StreamAsync(host, $$$"""
            {"model":"auto","stream":true,"messages":[{"role":"user","content":"Where is my order 4471?"}],
             "tools":[{"type":"function","function":{"name":"lookup_order","parameters":{{{LookupOrderParameters}}}}}]}
            """, ("Cache-Control", "no-cache"));
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        var delta = chunks.Select(c => c["choices"]![0]!["delta"]!.AsObject()).Single(d => d.ContainsKey("tool_calls"));
        var wire = delta["tool_calls"]!.AsArray().Single()!.AsObject();
        Assert.Equal(["index", "id", "type", "function"], wire.Select(p => p.Key));
        Assert.Equal("lookup_order", wire["function"]!["name"]!.GetValue<string>());
        Assert.Equal("tool_calls", chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Equal("[DONE]", events[^1]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_request_no_candidate_can_serve_is_the_gateways_caller_error_passed_through_not_a_503(bool stream)
    {
        // No model of this catalog declares tools.
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var body = new JsonObject
        {
            ["model"] = "auto",
            ["stream"] = stream,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Where is my order 4471?" }),
            ["tools"] = new JsonArray(new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = "lookup_order", ["parameters"] = JsonNode.Parse(LookupOrderParameters) },
            }),
        };
        var (response, _, raw) = await StreamAsync(host, body.ToJsonString());

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        var error = JsonNode.Parse(raw)!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal("unsupported_capability", error["code"]!.GetValue<string>());
        Assert.Equal("model", error["param"]!.GetValue<string>());
        Assert.Contains("no candidate can serve this request", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
