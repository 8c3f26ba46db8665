using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using static PersistentAgents.EndToEnd.Tests.Faults.UpstreamBehaviour;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests.Faults;

/// <summary>
/// One fault of a real-kind (openai) provider per test, through the embedded host's <c>POST /v1/chat/completions</c>
/// over fake upstreams: what the client sees, and how many attempts reached each provider. The catalog puts the
/// primary first (<c>model: auto</c> tries the catalog in its order); limits run at test scale (see
/// <see cref="FaultHost.Settings"/>). The groups are classes of their own so that xunit runs them in parallel.
/// </summary>
public static class GatewayFaultTests
{
    private const string Answer = "The invoice goes to the billing team.";

    private static FakeProvider Primary(FakeOpenAiUpstream upstream) => new("primary", upstream);

    private static FakeProvider Fallback(FakeOpenAiUpstream upstream) => new("fallback", upstream);

    /// <summary>Transient errors before anything was sent: retried on the same provider, then failed over.</summary>
    public sealed class Retries
    {
        [Fact]
        public async Task A_429_with_retry_after_is_retried_on_the_same_provider_once_the_wait_is_over()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Enqueue(RateLimited(retryAfter: TimeSpan.FromSeconds(1)));
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4471 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("primary", call.Header("x-pa-provider"));
            Assert.Equal(2, primary.Count);
            Assert.Equal(0, fallback.Count);
            // The retry delay is 20 ms: a second or more between the two attempts is the provider's Retry-After.
            var waited = primary.Requests[1].ArrivedAt - primary.Requests[0].ArrivedAt;
            Assert.True(waited >= TimeSpan.FromSeconds(0.95), $"retried after {waited.TotalMilliseconds:0} ms");
        }

        [Fact]
        public async Task A_provider_that_keeps_answering_429_is_failed_over_after_the_retries()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = RateLimited();
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4472 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("fallback", call.Header("x-pa-provider"));
            Assert.Equal(3, primary.Count); // the first attempt and two retries
            Assert.Equal(1, fallback.Count);
        }

        [Fact]
        public async Task A_500_once_is_retried_on_the_same_provider()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Enqueue(ServerError(500));
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4473 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("primary", call.Header("x-pa-provider"));
            Assert.Equal(2, primary.Count);
            Assert.Equal(0, fallback.Count);
        }

        [Fact]
        public async Task A_persistent_503_is_failed_over_after_the_retries()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = ServerError(503);
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4474 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("fallback", call.Header("x-pa-provider"));
            Assert.Equal(3, primary.Count);
            Assert.Equal(1, fallback.Count);
        }

        [Fact]
        public async Task A_connection_reset_before_the_answer_is_retried_then_failed_over()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = ResetConnection;
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4475 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("fallback", call.Header("x-pa-provider"));
            Assert.Equal(3, primary.Count);
            Assert.Equal(1, fallback.Count);
        }
    }

    /// <summary>Time limits (1 s to the first token, 1 s of stall): a timed-out attempt goes to the next candidate at once.</summary>
    public sealed class Timeouts
    {
        [Fact]
        public async Task A_provider_that_accepts_then_stays_silent_is_left_after_the_first_token_limit_and_not_retried()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = AcceptThenSilent;
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4476 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("fallback", call.Header("x-pa-provider"));
            Assert.Equal(1, primary.Count);
            Assert.Equal(1, fallback.Count);
            Assert.InRange(call.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(4));
        }

        [Fact]
        public async Task A_first_token_slower_than_the_limit_moves_to_the_next_candidate()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = UpstreamBehaviour.Answer(Answer).WithFirstTokenAfter(TimeSpan.FromSeconds(4));
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4477 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("fallback", call.Header("x-pa-provider"));
            Assert.Equal(1, primary.Count);
            Assert.Equal(1, fallback.Count);
            Assert.InRange(call.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(4));
        }

        [Fact]
        public async Task A_slow_first_token_within_the_limit_is_waited_for()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = UpstreamBehaviour.Answer(Answer).WithFirstTokenAfter(TimeSpan.FromMilliseconds(500));
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4478 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("primary", call.Header("x-pa-provider"));
            Assert.Equal(1, primary.Count);
            Assert.Equal(0, fallback.Count);
        }

        [Fact]
        public async Task A_stream_that_stalls_mid_answer_ends_with_an_error_event_after_the_stall_limit()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = UpstreamBehaviour.Answer("The invoice for March goes to the billing team in Lisbon.").BreakingWith(StreamFault.Stall, afterChunks: 3);
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4479 go?");

            ChatAssert.BrokenStream(call, "The invoice for ");
            Assert.Equal(1, primary.Count);
            Assert.Equal(0, fallback.Count); // never a second beginning
            Assert.InRange(call.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(4));
        }
    }

    /// <summary>Streams that break or end oddly.</summary>
    public sealed class StreamBreaks
    {
        [Fact]
        public async Task A_stream_cut_mid_answer_ends_with_an_error_event_and_the_streamed_tokens_are_charged()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = UpstreamBehaviour.Answer("The invoice for March goes to the billing team in Lisbon.").BreakingWith(StreamFault.Cut, afterChunks: 5);
            // One USD per output token, and a daily budget of one reservation (1,024 output tokens) and a half: the
            // next call is refused exactly when the cut stream's tokens were charged. The refusal says what is spent.
            var providers = new[] { Primary(primary), Fallback(fallback) }
                .Select(p => p with { InputPricePerMTok = 0, OutputPricePerMTok = 1_000_000 }).ToArray();
            await using var host = await FaultHost.StartAsync(providers, ["--Budgets:DailyUsdByAgent:cutter", "1025.5"]);
            var agent = ("x-pa-agent", "cutter");

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4480 go?", agent);

            ChatAssert.BrokenStream(call, "The invoice for March goes ");
            Assert.Equal("primary", call.Header("x-pa-provider"));
            Assert.Equal(1, primary.Count);
            Assert.Equal(0, fallback.Count);

            var next = await ChatCall.CompleteAsync(host, "And invoice 4481?", agent);
            var refusal = ChatAssert.Error(next, 429, "insufficient_quota", "budget_exceeded");
            var message = refusal["message"]!.GetValue<string>();
            var spent = Regex.Match(message, @"and ([0-9.]+) USD is spent or reserved today");
            Assert.True(spent.Success, message);
            // The five streamed words are a handful of tokens: charged, and not the whole 1,024-token reservation.
            Assert.InRange(double.Parse(spent.Groups[1].Value, CultureInfo.InvariantCulture), 2, 50);
            Assert.Equal(1, primary.Count);
        }

        [Fact]
        public async Task A_malformed_chunk_before_any_text_moves_to_the_next_candidate()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = UpstreamBehaviour.Answer(Answer).BreakingWith(StreamFault.Malformed, afterChunks: 0);
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4482 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("fallback", call.Header("x-pa-provider"));
            Assert.Equal(1, primary.Count); // garbage is not a transient failure: not retried
            Assert.Equal(1, fallback.Count);
        }

        /// <summary>
        /// A stream whose finish chunk (and usage) arrived but whose body then ended without <c>data: [DONE]</c> is
        /// complete: the finish_reason is what says an answer is whole, and OpenAI's SDKs end a stream at the end of
        /// the body, [DONE] or not. The client gets the whole answer and our own [DONE]; nothing is retried.
        /// </summary>
        [Fact]
        public async Task A_stream_that_finished_but_never_sent_done_is_a_complete_answer()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = UpstreamBehaviour.Answer(Answer, promptTokens: 30, completionTokens: 9).BreakingWith(StreamFault.NoDone);
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Where does invoice 4483 go?");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("primary", call.Header("x-pa-provider"));
            Assert.Equal(30, WholeNumber(call.StreamedUsage!["prompt_tokens"]));
            Assert.Equal(9, WholeNumber(call.StreamedUsage!["completion_tokens"]));
            Assert.Equal(1, primary.Count);
            Assert.Equal(0, fallback.Count);
        }
    }

    /// <summary>Errors that are the caller's: passed through with the provider's status, type and code.</summary>
    public sealed class CallerErrors
    {
        private static UpstreamBehaviour ContextTooLong => Fail(400, "invalid_request_error", "context_length_exceeded",
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9310 tokens. Please reduce the length of the messages.",
            param: "messages");

        [Fact]
        public async Task A_context_length_error_moves_to_a_candidate_with_a_larger_context_window()
        {
            await using var small = await FakeOpenAiUpstream.StartAsync("small-8k");
            await using var alsoSmall = await FakeOpenAiUpstream.StartAsync("other-8k");
            await using var large = await FakeOpenAiUpstream.StartAsync("large-128k");
            small.Default = ContextTooLong;
            alsoSmall.Default = ContextTooLong;
            await using var host = await FaultHost.StartAsync(
                new FakeProvider("small", small) { ContextWindow = 8192 },
                new FakeProvider("also-small", alsoSmall) { ContextWindow = 8192 },
                new FakeProvider("large", large) { ContextWindow = 128_000 });

            var call = await ChatCall.StreamAsync(host, "Summarise this long contract for me.");

            ChatAssert.CompleteStream(call, Answer);
            Assert.Equal("large", call.Header("x-pa-provider"));
            Assert.Equal(1, small.Count); // a context-length error is not retried
            Assert.Equal(0, alsoSmall.Count); // no larger window than the one that was too small
            Assert.Equal(1, large.Count);
        }

        [Fact]
        public async Task A_context_too_long_for_every_candidate_is_the_providers_400_with_its_type_and_code()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = ContextTooLong;
            await using var host = await FaultHost.StartAsync(
                Primary(primary) with { ContextWindow = 128_000 }, Fallback(fallback) with { ContextWindow = 8192 });

            var call = await ChatCall.StreamAsync(host, "Summarise this very long contract for me.");

            var error = ChatAssert.Error(call, 400, "invalid_request_error", "context_length_exceeded");
            Assert.Equal("messages", error["param"]?.GetValue<string>());
            Assert.Contains("maximum context length", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(1, primary.Count);
            Assert.Equal(0, fallback.Count);
        }

        [Fact]
        public async Task A_content_policy_rejection_is_passed_through_neither_retried_nor_failed_over()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = Fail(400, "invalid_request_error", "content_policy_violation",
                "Your request was rejected as a result of our safety system.");
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var call = await ChatCall.StreamAsync(host, "Something the provider refuses to answer.");

            var error = ChatAssert.Error(call, 400, "invalid_request_error", "content_policy_violation");
            Assert.Contains("safety system", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(1, primary.Count);
            Assert.Equal(0, fallback.Count);
        }

        [Fact]
        public async Task A_content_policy_rejection_of_an_agent_turn_is_a_400_and_nothing_is_remembered()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            // Both refuse, since the agent's learned ranking decides which is asked first; only one may be asked.
            primary.Default = Fail(400, "invalid_request_error", "content_policy_violation",
                "Your request was rejected as a result of our safety system.");
            fallback.Default = primary.Default;
            await using var host = await FaultHost.StartAsync(Primary(primary), Fallback(fallback));

            var (status, error) = await host.CompleteAsync("refused-agent", new { prompt = "Something the provider refuses to answer." });

            Assert.Equal(400, status);
            Assert.Contains("safety system", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("content_policy_violation", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(1, primary.Count + fallback.Count);
            Assert.Empty(host.Episodes("refused-agent"));
        }

        [Fact]
        public async Task A_trailing_assistant_message_is_never_sent_to_a_fallback_without_prefill()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var refuser = await FakeOpenAiUpstream.StartAsync("model-b");
            await using var last = await FakeOpenAiUpstream.StartAsync("model-c");
            primary.Default = ServerError(503);
            // As some providers do: a request that ends with an assistant message is refused as invalid.
            refuser.Default = When(r => r.LastRole == "assistant",
                Fail(400, "invalid_request_error", "invalid_value", "The last message must be a user message.", param: "messages"),
                UpstreamBehaviour.Answer(Answer));
            last.Default = UpstreamBehaviour.Answer("billing team.");
            await using var host = await FaultHost.StartAsync(
                Primary(primary) with { Capabilities = ["streaming", "prefill"] },
                new FakeProvider("refuser", refuser),
                new FakeProvider("last", last) { Capabilities = ["streaming", "prefill"] });

            var request = ChatCall.Request("Where does invoice 4484 go?", stream: true);
            request["messages"]!.AsArray().Add(new JsonObject { ["role"] = "assistant", ["content"] = "The invoice goes to the" });
            var call = await ChatCall.PostAsync(host, request);

            ChatAssert.CompleteStream(call, "billing team.");
            Assert.Equal("last", call.Header("x-pa-provider"));
            Assert.Equal(3, primary.Count);
            Assert.Equal(0, refuser.Count);
            Assert.Equal("assistant", Assert.Single(last.Requests).LastRole);
        }
    }

    /// <summary>A primary that flaps for "a minute" (scaled to 5 s) and then heals.</summary>
    public sealed class Flapping
    {
        [Fact]
        public async Task A_flapping_primary_is_served_throughout_and_back_in_use_soon_after_it_heals()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var flapsUntil = TimeSpan.FromSeconds(5);
            // Down and up every 400 ms until it heals.
            primary.Default = Decide(() => clock.Elapsed < flapsUntil && clock.Elapsed.TotalMilliseconds % 800 < 400
                ? ServerError(503)
                : UpstreamBehaviour.Answer(Answer));
            await using var host = await FaultHost.StartAsync(
                [Primary(primary), Fallback(fallback)],
                [
                    "--Resilience:FailureRatio", "0.5", "--Resilience:MinimumThroughput", "3",
                    "--Resilience:SamplingDuration", "00:00:01", "--Resilience:BreakDuration", "00:00:00.500",
                ]);
            clock.Restart();

            var replies = new List<(TimeSpan At, string? Provider)>();
            var number = 0;
            while (clock.Elapsed < flapsUntil + TimeSpan.FromSeconds(3))
            {
                var call = await ChatCall.StreamAsync(host, $"Where does invoice {5000 + number++} go?");
                ChatAssert.CompleteStream(call, Answer); // served throughout
                replies.Add((clock.Elapsed, call.Header("x-pa-provider")));
                await Task.Delay(40);
            }

            Assert.Contains(replies, r => r.At < flapsUntil && r.Provider == "fallback");
            // Its circuit's break is 0.5 s: the first call after that probes the healed primary, which stays in use.
            var back = replies.FindIndex(r => r.At > flapsUntil && r.Provider == "primary");
            Assert.True(back >= 0, "never back on the primary after it healed");
            var backAfter = replies[back].At - flapsUntil;
            Assert.True(backAfter < TimeSpan.FromSeconds(2), $"back on the primary {backAfter.TotalMilliseconds:0} ms after it healed");
            Assert.All(replies.Skip(back), r => Assert.Equal("primary", r.Provider));
        }
    }

    /// <summary>A provider's tool call, streamed in fragments by a fallback, reaches the client whole.</summary>
    public sealed class ToolCalls
    {
        [Fact]
        public async Task A_tool_call_streamed_by_the_fallback_reaches_the_client_with_its_arguments()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = ServerError(503);
            fallback.Default = UpstreamBehaviour.Answer("").CallingTool("lookup_invoice", """{"invoice":"4487"}""");
            await using var host = await FaultHost.StartAsync(
                Primary(primary) with { Capabilities = ["streaming", "tools"] }, Fallback(fallback) with { Capabilities = ["streaming", "tools"] });
            var request = ChatCall.Request("Who owes invoice 4487?", stream: true);
            request["tools"] = JsonNode.Parse("""
                [{"type":"function","function":{"name":"lookup_invoice","description":"Finds an invoice by its number.",
                  "parameters":{"type":"object","properties":{"invoice":{"type":"string"}},"required":["invoice"]}}}]
                """);

            var call = await ChatCall.PostAsync(host, request);

            Assert.True(call.Status == 200, call.ToString());
            Assert.Null(call.StreamError);
            var (id, name, arguments) = Assert.Single(call.StreamedToolCalls);
            Assert.False(string.IsNullOrEmpty(id));
            Assert.Equal("lookup_invoice", name);
            Assert.Equal("4487", JsonNode.Parse(arguments)!["invoice"]!.GetValue<string>());
            Assert.Equal(["tool_calls"], call.FinishReasons);
            Assert.True(call.Done, call.ToString());
            Assert.Equal("fallback", call.Header("x-pa-provider"));
            Assert.Equal(3, primary.Count);
            var forwarded = Assert.Single(fallback.Requests);
            Assert.Equal("lookup_invoice", forwarded.Body["tools"]![0]!["function"]!["name"]!.GetValue<string>());
        }
    }

    /// <summary>Usage and cost are those of the provider that answered, at its prices.</summary>
    public sealed class Costs
    {
        [Fact]
        public async Task Cost_and_usage_are_attributed_to_the_provider_that_answered()
        {
            await using var primary = await FakeOpenAiUpstream.StartAsync("model-a");
            await using var fallback = await FakeOpenAiUpstream.StartAsync("model-b");
            primary.Default = ServerError(503);
            fallback.Default = UpstreamBehaviour.Answer(Answer, promptTokens: 1200, completionTokens: 80);
            // No retries: one attempt of the primary per call, so that its circuit stays closed for both calls.
            await using var host = await FaultHost.StartAsync(
                [
                    Primary(primary) with { InputPricePerMTok = 30, OutputPricePerMTok = 60 },
                    Fallback(fallback) with { InputPricePerMTok = 0.5, OutputPricePerMTok = 1.5 },
                ],
                ["--Resilience:MaxRetries", "0"]);
            const double fallbackCost = ((1200 * 0.5) + (80 * 1.5)) / 1_000_000;

            var streamed = await ChatCall.StreamAsync(host, "Where does invoice 4485 go?");
            var plain = await ChatCall.CompleteAsync(host, "Where does invoice 4486 go?");

            ChatAssert.CompleteStream(streamed, Answer);
            Assert.Equal("fallback", streamed.Header("x-pa-provider"));
            var usage = streamed.StreamedUsage!;
            Assert.Equal(1200, WholeNumber(usage["prompt_tokens"]));
            Assert.Equal(80, WholeNumber(usage["completion_tokens"]));
            Assert.Equal(1280, WholeNumber(usage["total_tokens"]));
            Assert.Equal(fallbackCost, Number(usage["x_pa_cost_usd"]), 12);

            Assert.True(plain.Status == 200, plain.ToString());
            Assert.Equal("fallback", plain.Header("x-pa-provider"));
            Assert.Equal("fallback/model-b", plain.Json["model"]!.GetValue<string>());
            Assert.Equal(1200, WholeNumber(plain.Json["usage"]!["prompt_tokens"]));
            Assert.Equal(fallbackCost, Number(plain.Json["usage"]!["x_pa_cost_usd"]), 12);
            Assert.Equal(fallbackCost, double.Parse(plain.Header("x-pa-cost-usd")!, CultureInfo.InvariantCulture), 12);
            Assert.Equal(2, primary.Count);
            Assert.Equal(2, fallback.Count);
            Assert.All(fallback.Requests, r => Assert.Equal($"Bearer {FaultHost.Key}", r.Authorization));
        }
    }
}
