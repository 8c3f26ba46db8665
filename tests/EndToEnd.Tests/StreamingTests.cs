using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using PersistentAgents.Contracts.V1;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

public sealed class StreamingTests : IAsyncLifetime
{
    private TestHost _host = null!;

    public async Task InitializeAsync() => _host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Rest_streams_server_sent_events_ending_with_the_whole_reply()
    {
        using var content = new StringContent("""{"prompt":"Stream the routing of this long email about invoices","taskType":"email_routing"}""", Encoding.UTF8, "application/json");
        using var response = await _host.Rest.PostAsync("/platform/agents/streamer/complete?stream=true", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = ParseEvents(await response.Content.ReadAsStringAsync());
        var deltas = events.Where(e => e.Name == "delta").Select(e => e.Data["text"]!.GetValue<string>()).ToList();
        Assert.True(deltas.Count > 3, $"{deltas.Count} deltas");
        var (name, done) = events[^1];
        Assert.Equal("done", name);
        Assert.Equal(done["text"]!.GetValue<string>(), string.Concat(deltas));
        Assert.True(WholeNumber(done["tokensOut"]) > 0);
        Assert.True(Number(done["costUsd"]) > 0);

        var stats = await _host.GetAsync("/platform/agents/streamer/stats");
        Assert.Equal(1, WholeNumber(stats["totalInteractions"]));
    }

    [Fact]
    public async Task Rest_streaming_refuses_bad_input_before_streaming()
    {
        using var content = new StringContent("""{"prompt":"","bogus":1}""", Encoding.UTF8, "application/json");
        using var response = await _host.Rest.PostAsync("/platform/agents/streamer/complete?stream=true", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("bogus:", (await TestHost.ReadObjectAsync(response))["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Grpc_streams_deltas_then_the_final_reply()
    {
        var client = new PersistentAgents.Contracts.V1.Agents.AgentsClient(_host.Grpc);
        using var call = client.CompleteStream(new CompleteRequest { Agent = "grpc-streamer", Prompt = "Stream me a routing decision please" });
        var deltas = new StringBuilder();
        CompleteReply? final = null;
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            if (item.EventCase == CompleteEvent.EventOneofCase.Delta)
            {
                Assert.Null(final);
                deltas.Append(item.Delta);
            }
            else
            {
                final = item.Final;
            }
        }

        Assert.NotNull(final);
        Assert.Equal(final.Text, deltas.ToString());
        Assert.True(final.Simulated);
    }

    [Fact]
    public async Task A_stream_broken_after_text_ends_with_an_error_event_never_a_clean_end()
    {
        foreach (var provider in new[] { "sim-best", "sim-fair", "sim-poor" })
        {
            var (status, _) = await _host.SendAsync(HttpMethod.Put, $"/admin/providers/{provider}/simulation", new { midStreamFailureRate = 1.0 });
            Assert.Equal(200, status);
        }

        using var content = new StringContent("""{"prompt":"This stream will break after its first words"}""", Encoding.UTF8, "application/json");
        using var response = await _host.Rest.PostAsync("/platform/agents/breaker/complete?stream=true", content);
        var events = ParseEvents(await response.Content.ReadAsStringAsync());

        Assert.Contains(events, e => e.Name == "delta");
        Assert.DoesNotContain(events, e => e.Name == "done");
        var (name, error) = events[^1];
        Assert.Equal("error", name);
        Assert.StartsWith("stream: ", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    private static List<(string Name, JsonObject Data)> ParseEvents(string body) =>
        body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(block => block.Split('\n'))
            .Select(lines => (
                Name: lines.Single(l => l.StartsWith("event: ", StringComparison.Ordinal))["event: ".Length..],
                Data: JsonNode.Parse(lines.Single(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..])!.AsObject()))
            .ToList();
}
