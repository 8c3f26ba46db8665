using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;
using static PersistentAgents.EndToEnd.Tests.OpenAiTestSupport;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary><c>model: "agent/&lt;name&gt;"</c>: any OpenAI client talking to a persistent agent, a full turn each time.</summary>
public sealed class OpenAiAgentModelTests
{
    [Fact]
    public async Task The_official_client_talks_to_an_agent_plain_and_streamed_and_its_stats_count_both_turns()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var chat = OpenAiClientFor(host).GetChatClient("agent/email-router");

        var plain = await chat.CompleteChatAsync([new SystemChatMessage("Answer briefly."), new UserChatMessage("A customer disputes invoice 4471")]);
        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("The parcel for order 5512 never arrived")]))
        {
            updates.Add(update);
        }

        var reply = plain.Value;
        Assert.Equal("agent/email-router", reply.Model);
        Assert.Equal(ChatFinishReason.Stop, reply.FinishReason);
        Assert.Contains("invoice 4471", reply.Content[0].Text, StringComparison.Ordinal);
        Assert.Contains("[simulated ", reply.Content[0].Text, StringComparison.Ordinal);
        var headers = plain.GetRawResponse().Headers;
        Assert.True(headers.TryGetValue("x-pa-interaction-id", out var interaction) && interaction!.Length > 0);
        Assert.True(headers.TryGetValue("x-pa-cost-usd", out var cost));

        Assert.All(updates, u => Assert.Equal("agent/email-router", u.Model));
        Assert.Contains("order 5512", string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text)), StringComparison.Ordinal);
        Assert.Equal(ChatFinishReason.Stop, Assert.Single(updates, u => u.FinishReason is not null).FinishReason);
        var usage = Assert.Single(updates, u => u.Usage is not null).Usage;

        var stats = await host.GetAsync("/platform/agents/email-router/stats");
        Assert.Equal(2, WholeNumber(stats["totalInteractions"]));
        Assert.Equal(2, WholeNumber(stats["successes"]));
        Assert.Equal(reply.Usage.InputTokenCount + usage.InputTokenCount, WholeNumber(stats["tokensIn"]));
        Assert.Equal(reply.Usage.OutputTokenCount + usage.OutputTokenCount, WholeNumber(stats["tokensOut"]));
        Assert.True(Number(stats["totalCostUsd"]) >= double.Parse(cost!, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task An_agent_remembers_its_session_so_the_client_sends_only_the_new_turn_and_the_session_header_keeps_them_apart()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        async Task<string> AskAsync(string session, string question)
        {
            var (status, body) = await PostAsync(host, $$"""{"model":"agent/helpdesk","messages":[{"role":"user","content":"{{question}}"}]}""", ("x-pa-session", session));
            Assert.Equal(HttpStatusCode.OK, status);
            return body["choices"]![0]!["message"]!["content"]!.GetValue<string>();
        }

        // The simulated model says how many messages came before the question: the agent's own system prompt,
        // then the session's earlier turns (a question and a reply each) from the agent's working memory.
        Assert.Contains("with 1 lines of context", await AskAsync("ticket-1", "My printer is jammed"), StringComparison.Ordinal);
        Assert.Contains("with 3 lines of context", await AskAsync("ticket-1", "It still is"), StringComparison.Ordinal);
        Assert.Contains("with 1 lines of context", await AskAsync("ticket-2", "My screen flickers"), StringComparison.Ordinal);
        var working = await host.GetAsync("/platform/agents/helpdesk/memory/working?sessionId=ticket-1");
        Assert.Equal(["My printer is jammed", "It still is"], working["turns"]!.AsArray().Select(t => t!["prompt"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Json_mode_asks_the_agent_for_json_and_a_streamed_agent_reply_ends_with_usage_and_cost()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var (status, body) = await PostAsync(host, """
            {"model":"agent/router","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"Route: my parcel never arrived"}]}
            """, ("x-pa-task-type", "email_routing"));
        var (response, events, _) = await StreamAsync(host, """
            {"model":"agent/router","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Route: the invoice is wrong"}]}
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        using (var reply = JsonDocument.Parse(body["choices"]![0]!["message"]!["content"]!.GetValue<string>()))
        {
            Assert.Equal("email_routing", reply.RootElement.GetProperty("taskType").GetString()); // the task type header reached the turn
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        Assert.All(chunks, c => Assert.Equal("agent/router", c["model"]!.GetValue<string>()));
        Assert.Contains("the invoice is wrong", TextOf(chunks), StringComparison.Ordinal);
        var usage = chunks[^1]["usage"]!;
        Assert.True(usage["completion_tokens"]!.GetValue<long>() > 0);
        Assert.True(usage["x_pa_cost_usd"]!.GetValue<double>() > 0);

        var stats = await host.GetAsync("/platform/agents/router/stats");
        Assert.Equal(2, WholeNumber(stats["totalInteractions"]));
        Assert.Equal(["email_routing", "general"], stats["taskTypes"]!.AsArray().Select(t => t!["taskType"]!.GetValue<string>()));
    }
}
