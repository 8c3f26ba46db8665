using System.Diagnostics;
using Microsoft.Extensions.AI;
using PersistentAgents.Embeddings;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using ChatMessage = PersistentAgents.Contracts.V1.ChatMessage;

namespace PersistentAgents.Gateway.Tests;

/// <summary>
/// The limits of one request: first-token and stall limits that fail over without a retry, the whole-request
/// deadline, refusals that are the caller's, context windows, capabilities, and replies checked as JSON.
/// </summary>
public sealed partial class GatewayServiceTests
{
    private static readonly ModelDefinition Quick = new() { Name = "m", InputPricePerMTok = 1, OutputPricePerMTok = 2, FirstTokenSeconds = 0.3, StallSeconds = 0.3 };

    [Fact]
    public async Task A_stream_with_no_first_token_fails_over_at_once_and_is_not_retried()
    {
        var silent = new ScriptedProvider("silent", ScriptedProvider.Hang());
        var healthy = new ScriptedProvider("healthy", ScriptedProvider.Reply("from healthy"));
        var clock = Stopwatch.StartNew();
        var deltas = new List<GatewayDelta>();
        var reply = await Gateway([silent, healthy], models: [Quick, Quick])
            .CompleteStreamingAsync(Request("hello"), (d, _) => { deltas.Add(d); return ValueTask.CompletedTask; }, CancellationToken.None);

        Assert.True(reply.Success);
        Assert.Equal(1, silent.Calls);
        Assert.Equal("silent/m sent no first token within 0.3 s", reply.Attempts[0].Error);
        Assert.Equal("healthy", deltas[0].Arm.Provider);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_stream_that_stalls_after_text_ends_with_an_error_no_fallback_and_the_sent_tokens_charged()
    {
        var stalling = new ScriptedProvider("stalling", ScriptedProvider.StallAfter(3));
        var never = new ScriptedProvider("never", ScriptedProvider.Reply());
        var gateway = Gateway([stalling, never], models: [Quick, Quick], budgets: new BudgetOptions { DefaultDailyUsd = 1 });
        var reply = await gateway.CompleteStreamingAsync(Request("hello"), (_, _) => ValueTask.CompletedTask, CancellationToken.None);

        Assert.False(reply.Success);
        Assert.StartsWith("stalling/m broke after 14 characters were sent: stalling/m stalled: nothing for 0.3 s", reply.StreamError, StringComparison.Ordinal);
        Assert.Equal(0, never.Calls);
        Assert.Equal(1, stalling.Calls);
        // The input and the three words that went out are paid for, and nothing more stays reserved.
        var tokens = new TokenCounter();
        var expected = GatewayService.CostOf(Quick, tokens.Count("You route email.\nhello"), tokens.Count("word word word"));
        var budget = await gateway.GetBudgetAsync(new BudgetRequest { Tenant = "default", Agent = "agent" }, CancellationToken.None);
        Assert.Equal(expected, budget.CommittedUsd, 12);
        Assert.True(expected > 0);
    }

    [Fact]
    public async Task A_stream_longer_than_the_providers_call_timeout_is_not_cut()
    {
        var slow = new ScriptedProvider("slow", ScriptedProvider.Reply("one two three four five six")) { WordDelay = TimeSpan.FromMilliseconds(100) };
        var deltas = new List<string>();
        var patient = new ModelDefinition { Name = "m", FirstTokenSeconds = 5, StallSeconds = 5 };
        var reply = await Gateway([slow], timeout: TimeSpan.FromMilliseconds(250), models: [patient])
            .CompleteStreamingAsync(Request("hello"), (d, _) => { deltas.Add(d.Text); return ValueTask.CompletedTask; }, CancellationToken.None);

        Assert.True(reply.Success, reply.StreamError);
        Assert.Equal("one two three four five six", string.Concat(deltas));
        Assert.Equal(1, slow.Calls);
    }

    [Fact]
    public async Task The_request_deadline_bounds_the_wait_over_all_candidates()
    {
        var first = new ScriptedProvider("first", ScriptedProvider.Hang());
        var second = new ScriptedProvider("second", ScriptedProvider.Hang());
        var clock = Stopwatch.StartNew();
        var reply = await Gateway(
                [first, second],
                new ResilienceOptions { MaxRetries = 0, RequestDeadline = TimeSpan.FromMilliseconds(500) },
                timeout: TimeSpan.FromSeconds(30))
            .CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.False(reply.Success);
        Assert.True(reply.DeadlineExceeded);
        Assert.Equal(0, second.Calls);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.4, 2);
    }

    [Fact]
    public async Task A_content_policy_refusal_goes_back_to_the_caller_without_a_retry_or_a_fallback()
    {
        var strict = new ScriptedProvider("strict", ScriptedProvider.Refuse(ProviderFailure.Caller, "content_policy_violation"));
        var other = new ScriptedProvider("other", ScriptedProvider.Reply());
        var reply = await Gateway([strict, other]).CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.False(reply.Success);
        Assert.Equal(1, strict.Calls);
        Assert.Equal(0, other.Calls);
        Assert.Equal(400, reply.CallerError.HttpStatus);
        Assert.Equal("content_policy_violation", reply.CallerError.Code);
        Assert.Equal("invalid_request_error", reply.CallerError.Type);
        Assert.Equal("strict", reply.CallerError.Arm.Provider);
    }

    [Fact]
    public async Task A_context_length_refusal_moves_on_to_a_larger_window_only_and_else_reaches_the_caller()
    {
        ModelDefinition Window(int tokens) => new() { Name = "m", ContextWindow = tokens };
        var small = new ScriptedProvider("small", ScriptedProvider.Refuse(ProviderFailure.ContextTooLong, "context_length_exceeded"));
        var same = new ScriptedProvider("same", ScriptedProvider.Reply());
        var large = new ScriptedProvider("large", ScriptedProvider.Reply("from large"));
        var reply = await Gateway([small, same, large], models: [Window(8000), Window(8000), Window(200_000)]).CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.Equal("from large", reply.Text);
        Assert.Equal(0, same.Calls);

        var alone = new ScriptedProvider("alone", ScriptedProvider.Refuse(ProviderFailure.ContextTooLong, "context_length_exceeded"));
        var refused = await Gateway([alone]).CompleteAsync(Request("hello"), CancellationToken.None);
        Assert.False(refused.Success);
        Assert.Equal("context_length_exceeded", refused.CallerError.Code);
        Assert.Equal(400, refused.CallerError.HttpStatus);
    }

    [Fact]
    public async Task An_input_over_every_window_is_refused_as_the_callers_without_a_call()
    {
        var tiny = new ScriptedProvider("tiny", ScriptedProvider.Reply());
        var reply = await Gateway([tiny], models: [new ModelDefinition { Name = "m", ContextWindow = 5 }])
            .CompleteAsync(Request(string.Join(' ', Enumerable.Repeat("word", 50))), CancellationToken.None);

        Assert.Equal(0, tiny.Calls);
        Assert.Equal("context_length_exceeded", reply.CallerError.Code);
        Assert.Contains("over the context window of 5", reply.CallerError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tools_json_and_prefill_go_only_to_models_that_declare_them()
    {
        var plain = new ScriptedProvider("plain", ScriptedProvider.Reply());
        var able = new ScriptedProvider("able", ScriptedProvider.Reply("""{"ok":true}"""));
        ModelDefinition Plain() => new() { Name = "m", Capabilities = ["streaming"] };
        ModelDefinition Able() => new() { Name = "m", Capabilities = ["streaming", "json", "tools", "prefill"] };

        var tools = Request("hello");
        tools.Tools.Add(new ToolDefinition { Name = "lookup_order", ParametersJson = """{"type":"object","properties":{"id":{"type":"string"}}}""" });
        tools.ToolChoice = "required";
        var reply = await Gateway([plain, able], models: [Plain(), Able()]).CompleteAsync(tools, CancellationToken.None);
        Assert.Equal("lacks the tools capability", reply.Attempts[0].Error);
        Assert.Equal(0, plain.Calls);
        var declared = Assert.IsAssignableFrom<AIFunctionDeclaration>(Assert.Single(able.LastOptions!.Tools!));
        Assert.Equal("lookup_order", declared.Name);
        Assert.IsType<RequiredChatToolMode>(able.LastOptions.ToolMode);

        var prefill = Request("hello");
        prefill.Messages.Add(new ChatMessage { Role = "assistant", Content = "Dear" });
        reply = await Gateway([plain, able], models: [Plain(), Able()]).CompleteAsync(prefill, CancellationToken.None);
        Assert.StartsWith("does not accept a conversation that ends with an assistant message", reply.Attempts[0].Error, StringComparison.Ordinal);
        Assert.Equal(0, plain.Calls);

        var onlyPlain = await Gateway([plain], models: [Plain()]).CompleteAsync(tools, CancellationToken.None);
        Assert.Equal("unsupported_capability", onlyPlain.CallerError.Code);
        Assert.Equal(400, onlyPlain.CallerError.HttpStatus);
    }

    [Fact]
    public async Task A_reply_that_breaks_the_schema_is_that_candidates_failure_and_the_next_one_answers()
    {
        const string Schema = """
            {"type":"object","additionalProperties":false,"required":["route","order"],
             "properties":{"route":{"enum":["billing","support"]},
                           "order":{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}}}}
            """;
        ModelDefinition Json() => new() { Name = "m", Capabilities = ["json"] };
        var sloppy = new ScriptedProvider("sloppy", ScriptedProvider.Reply("""{"route":"sales","order":{},"extra":1}"""));
        var prose = new ScriptedProvider("prose", ScriptedProvider.Reply("Sure! Here is the JSON"));
        var exact = new ScriptedProvider("exact", ScriptedProvider.Reply("""{"route":"billing","order":{"id":"4471"}}"""));
        var request = Request("route order 4471");
        request.ResponseFormat = "json";
        request.JsonSchema = Schema;
        request.JsonSchemaName = "routing";

        var reply = await Gateway([sloppy, prose, exact], models: [Json(), Json(), Json()]).CompleteAsync(request, CancellationToken.None);

        Assert.True(reply.Success);
        Assert.Equal("exact", reply.Arm.Provider);
        Assert.Equal(["failed", "failed", "succeeded"], reply.Attempts.Select(a => a.Outcome));
        Assert.Contains("/order", reply.Attempts[0].Error, StringComparison.Ordinal);
        Assert.Contains("/route", reply.Attempts[0].Error, StringComparison.Ordinal);
        Assert.StartsWith("the reply is not JSON", reply.Attempts[1].Error, StringComparison.Ordinal);
        var format = Assert.IsType<ChatResponseFormatJson>(exact.LastOptions!.ResponseFormat);
        Assert.Equal("routing", format.SchemaName);
    }

    [Fact]
    public async Task Generation_settings_reach_the_provider_and_max_tokens_bounds_the_budget_reservation()
    {
        var provider = new ScriptedProvider("p", ScriptedProvider.Reply());
        var request = Request("hello");
        request.Options = new CompletionOptions { MaxOutputTokens = 64, Temperature = 0.2, TopP = 0.9, Seed = 7, User = "user-1" };
        request.Options.Stop.Add("END");
        await Gateway([provider], budgets: new BudgetOptions { ReservedOutputTokens = 1_000_000 }).CompleteAsync(request, CancellationToken.None);

        var options = provider.LastOptions!;
        Assert.Equal(64, options.MaxOutputTokens);
        Assert.Equal(0.2f, options.Temperature);
        Assert.Equal(0.9f, options.TopP);
        Assert.Equal(7, options.Seed);
        Assert.Equal(["END"], options.StopSequences!);
        Assert.Equal("user-1", options.AdditionalProperties![GatewayChatOptions.EndUserKey]);
    }

    [Fact]
    public async Task A_simulated_model_with_tools_calls_the_declared_tool_then_answers_from_its_result()
    {
        var simulated = new SimulatedProvider("sim");
        var model = new ModelDefinition { Name = "m", Capabilities = ["streaming", "tools"], Simulation = new SimulationDefinition { LatencyMs = 0 } };
        var gateway = new GatewayService(
            [new ActiveModel(simulated, model)],
            new ProviderResilience(["sim"], new ResilienceOptions(), _events, _time, Microsoft.Extensions.Logging.Abstractions.NullLogger<ProviderResilience>.Instance),
            new TokenCounter(),
            new ResponseCache(new HashedNGramEmbedder(), Microsoft.Extensions.Options.Options.Create(new ResponseCacheOptions { Enabled = false }), _time),
            new SpendLedger(new MemorySpendStore(), Microsoft.Extensions.Options.Options.Create(new BudgetOptions()), _time),
            _time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<GatewayService>.Instance);
        var request = Request("where is order 4471?");
        request.Tools.Add(new ToolDefinition
        {
            Name = "lookup_order",
            ParametersJson = """{"type":"object","required":["id","priority"],"properties":{"id":{"type":"string"},"priority":{"enum":["low","high"]}}}""",
        });

        var deltas = new List<GatewayDelta>();
        var call = await gateway.CompleteStreamingAsync(request, (d, _) => { deltas.Add(d); return ValueTask.CompletedTask; }, CancellationToken.None);
        Assert.Equal("tool_calls", call.FinishReason);
        var toolCall = Assert.Single(call.ToolCalls);
        Assert.Equal("lookup_order", toolCall.Name);
        Assert.Contains("\"priority\":\"low\"", toolCall.ArgumentsJson, StringComparison.Ordinal);
        Assert.Equal(toolCall, Assert.Single(deltas).ToolCall);

        request.Messages.Add(new ChatMessage { Role = "assistant", ToolCalls = { toolCall } });
        request.Messages.Add(new ChatMessage { Role = "tool", ToolCallId = toolCall.Id, Content = "shipped on Monday" });
        var answer = await gateway.CompleteAsync(request, CancellationToken.None);
        Assert.Equal("stop", answer.FinishReason);
        Assert.Empty(answer.ToolCalls);
        Assert.Contains("shipped on Monday", answer.Text, StringComparison.Ordinal);
    }
}
