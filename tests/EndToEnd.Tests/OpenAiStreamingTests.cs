using System.Net;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using static PersistentAgents.EndToEnd.Tests.OpenAiTestSupport;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary><c>stream: true</c> on the OpenAI chat-completions API: OpenAI's server-sent events, byte for byte, and how a stream fails.</summary>
public sealed class OpenAiStreamingTests
{
    private const string Question = """{"role":"user","content":"A customer disputes invoice 4471 and wants a refund"}""";

    [Fact]
    public async Task The_official_client_streams_the_same_text_as_the_unstreamed_reply_then_the_usage()
    {
        // No response cache: the second call must be generated, not the first one's copy.
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Cache:Enabled", "false");
        var chat = OpenAiClientFor(host).GetChatClient("sim-best/best");
        ChatMessage[] messages = [new SystemChatMessage("You route customer e-mail."), new UserChatMessage("A customer disputes invoice 4471")];

        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (var update in chat.CompleteChatStreamingAsync(messages))
        {
            updates.Add(update);
        }

        var whole = (await chat.CompleteChatAsync(messages)).Value;
        var text = string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text));
        Assert.Equal(whole.Content[0].Text, text);
        Assert.Contains("invoice 4471", text, StringComparison.Ordinal);
        Assert.True(updates.Count(u => u.ContentUpdate.Count > 0) > 1, "the text came in more than one delta");
        Assert.All(updates, u => Assert.Equal("sim-best/best", u.Model));
        Assert.Single(updates.Select(u => u.CompletionId).Distinct());
        Assert.Equal(ChatFinishReason.Stop, Assert.Single(updates, u => u.FinishReason is not null).FinishReason);
        var usage = Assert.Single(updates, u => u.Usage is not null).Usage;
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
    }

    [Fact]
    public async Task The_stream_is_openai_server_sent_events_with_the_gateway_headers_then_usage_with_cost_and_done()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var (response, events, raw) = await StreamAsync(host,
            $$"""{"model":"sim-best/best","stream":true,"stream_options":{"include_usage":true},"messages":[{{Question}}]}""", ("Cache-Control", "no-cache"));
        var (_, whole) = await PostAsync(host, $$"""{"model":"sim-best/best","messages":[{{Question}}]}""", ("Cache-Control", "no-cache"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("sim-best", Assert.Single(response.Headers.GetValues("x-pa-provider")));
        Assert.Equal("true", Assert.Single(response.Headers.GetValues("x-pa-simulated")));
        Assert.Equal("false", Assert.Single(response.Headers.GetValues("x-pa-cache-hit")));
        Assert.False(response.Headers.Contains("x-pa-cost-usd"), "the cost is not known when the headers go out");
        Assert.EndsWith("\n\ndata: [DONE]\n\n", raw, StringComparison.Ordinal);
        Assert.Equal("[DONE]", events[^1]);

        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        Assert.All(chunks, c =>
        {
            Assert.Equal(chunks[0]["id"]!.GetValue<string>(), c["id"]!.GetValue<string>());
            Assert.Equal(chunks[0]["created"]!.GetValue<long>(), c["created"]!.GetValue<long>());
            Assert.Equal("sim-best/best", c["model"]!.GetValue<string>());
            Assert.Equal("chat.completion.chunk", c["object"]!.GetValue<string>());
        });
        Assert.StartsWith("chatcmpl-", chunks[0]["id"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("""{"role":"assistant","content":""}""", chunks[0]["choices"]![0]!["delta"]!.ToJsonString());

        // Content deltas; then the last chunk: an empty delta and the finish reason; then the usage, no choices.
        var content = chunks[1..^2];
        Assert.NotEmpty(content);
        Assert.All(content, c => Assert.Null(c["choices"]![0]!["finish_reason"]));
        Assert.Equal(whole["choices"]![0]!["message"]!["content"]!.GetValue<string>(), TextOf(chunks));
        var last = chunks[^2]["choices"]![0]!;
        Assert.Equal("{}", last["delta"]!.ToJsonString());
        Assert.Equal("stop", last["finish_reason"]!.GetValue<string>());
        Assert.All(chunks[..^1], c => Assert.True(c.ContainsKey("usage") && c["usage"] is null));

        var usageChunk = chunks[^1];
        Assert.Empty(usageChunk["choices"]!.AsArray());
        var usage = usageChunk["usage"]!;
        var tokensIn = usage["prompt_tokens"]!.GetValue<long>();
        var tokensOut = usage["completion_tokens"]!.GetValue<long>();
        Assert.Equal(whole["usage"]!["completion_tokens"]!.GetValue<long>(), tokensOut);
        Assert.Equal(tokensIn + tokensOut, usage["total_tokens"]!.GetValue<long>());
        Assert.Equal(((tokensIn * 1.0) + (tokensOut * 2.0)) / 1_000_000, usage["x_pa_cost_usd"]!.GetValue<double>(), 12);
        Assert.Equal(whole["usage"]!["x_pa_cost_usd"]!.GetValue<double>(), usage["x_pa_cost_usd"]!.GetValue<double>(), 12);
    }

    [Fact]
    public async Task Without_include_usage_the_stream_has_no_usage_chunk_nor_usage_fields()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var (_, events, _) = await StreamAsync(host, $$"""{"model":"auto","stream":true,"messages":[{{Question}}]}""");

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        Assert.All(chunks, c => Assert.False(c.ContainsKey("usage")));
        Assert.Equal("stop", chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_stream_that_breaks_after_text_ends_with_an_in_band_error_never_a_finish_or_done()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), """
            simulated: always
            providers:
              - name: sim-flaky
                kind: simulated
                models:
                  - name: flaky
                    inputPricePerMTok: 1
                    outputPricePerMTok: 2
                    quality: 0.5
                    simulation: { quality: 0.5, failureRate: 0, midStreamFailureRate: 1, latencyMs: 0 }
              - name: sim-fair
                kind: simulated
                models:
                  - name: fair
                    inputPricePerMTok: 1
                    outputPricePerMTok: 2
                    quality: 0.5
                    simulation: { quality: 0.5, failureRate: 0, latencyMs: 0 }
            """);

        var (response, events, raw) = await StreamAsync(host,
            $$"""{"model":"auto","stream":true,"stream_options":{"include_usage":true},"messages":[{{Question}}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("[DONE]", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("\"finish_reason\":\"stop\"", raw, StringComparison.Ordinal);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        Assert.All(chunks, c => Assert.Equal("sim-flaky/flaky", c["model"]!.GetValue<string>())); // no fallback once text went out
        Assert.NotEmpty(TextOf(chunks));
        var error = JsonNode.Parse(events[^1])!["error"]!;
        Assert.Equal("server_error", error["type"]!.GetValue<string>());
        Assert.Equal("stream_interrupted", error["code"]!.GetValue<string>());
        Assert.Contains("sim-flaky/flaky", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_that_fails_before_its_first_delta_is_an_ordinary_json_error()
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
            """);

        var (response, _, raw) = await StreamAsync(host, $$"""{"model":"auto","stream":true,"messages":[{{Question}}]}""");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        Assert.False(response.Headers.Contains("x-pa-provider"));
        var error = JsonNode.Parse(raw)!["error"]!;
        Assert.Equal("all_candidates_failed", error["code"]!.GetValue<string>());
        Assert.Contains("sim-broken/broken failed", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cached_reply_streams_too_saying_it_is_a_cache_hit_and_costing_nothing()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var body = $$"""{"model":"sim-best/best","stream":true,"stream_options":{"include_usage":true},"messages":[{{Question}}]}""";

        var first = await StreamAsync(host, body);
        var second = await StreamAsync(host, body);

        Assert.Equal("false", Assert.Single(first.Response.Headers.GetValues("x-pa-cache-hit")));
        Assert.Equal("true", Assert.Single(second.Response.Headers.GetValues("x-pa-cache-hit")));
        var chunks = second.Events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        Assert.Equal(TextOf(first.Events[..^1].Select(e => JsonNode.Parse(e)!.AsObject())), TextOf(chunks));
        Assert.Equal(0, chunks[^1]["usage"]!["x_pa_cost_usd"]!.GetValue<double>());
        Assert.Equal(0, chunks[^1]["usage"]!["completion_tokens"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_cancels_the_turn_upstream()
    {
        // About two seconds of words; had the turn gone on without the client, it would be recorded by the end.
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), """
            simulated: always
            providers:
              - name: sim-slow
                kind: simulated
                models:
                  - name: slow
                    inputPricePerMTok: 1
                    outputPricePerMTok: 2
                    quality: 0.5
                    simulation: { quality: 0.5, failureRate: 0, latencyMs: 2000 }
            """);

        // A client that closes the connection when the response is disposed, instead of reading the rest to reuse it.
        using (var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = host.Rest.BaseAddress })
        using (var request = ChatRequest($$"""{"model":"agent/slowpoke","stream":true,"messages":[{{Question}}]}"""))
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);
        }

        await Task.Delay(TimeSpan.FromSeconds(3));
        var (status, stats) = await host.SendAsync(HttpMethod.Get, "/platform/agents/slowpoke/stats");
        Assert.True(status == 404, stats.ToJsonString()); // no interaction was recorded: the turn ended with the connection
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_request_whose_deadline_passes_before_any_answer_is_a_504_timeout(bool stream)
    {
        // A minute of reply spread over its words: even the first word comes seconds after the deadline.
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), """
            simulated: always
            providers:
              - name: sim-slow
                kind: simulated
                models:
                  - name: slow
                    inputPricePerMTok: 1
                    outputPricePerMTok: 2
                    quality: 0.5
                    simulation: { quality: 0.5, failureRate: 0, latencyMs: 60000 }
            """, "--Resilience:RequestDeadline", "00:00:01");

        var (response, _, raw) = await StreamAsync(host, $$"""{"model":"auto","stream":{{(stream ? "true" : "false")}},"messages":[{{Question}}]}""");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        var error = JsonNode.Parse(raw)!["error"]!;
        Assert.Equal("server_error", error["type"]!.GetValue<string>());
        Assert.Equal("timeout", error["code"]!.GetValue<string>());
    }
}
