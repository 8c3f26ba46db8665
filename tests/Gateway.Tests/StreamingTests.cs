using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;

namespace PersistentAgents.Gateway.Tests;

/// <summary>Streamed replies of the OpenAI-compatible and Anthropic adapters against fake APIs on 127.0.0.1.</summary>
public sealed class StreamingTests
{
    private static readonly string[] Deltas = ["Send", " it", " to", " billing."];

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_stream_yields_the_deltas_then_a_last_chunk_with_usage(string kind)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(200, fake.StreamBody(Deltas), "text/event-stream");

        var chunks = await ReadAllAsync(fake.Provider.StreamAsync(FakeProvider.Model, "email_routing", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.Equal(Deltas, chunks.SkipLast(1).Select(c => c.TextDelta));
        Assert.All(chunks.SkipLast(1), c => Assert.False(c.IsLast));
        var last = chunks[^1];
        Assert.True(last.IsLast);
        Assert.Equal("", last.TextDelta);
        Assert.Equal(150, last.InputTokens);
        Assert.Equal(100, last.CachedInputTokens);
        Assert.Equal(8, last.OutputTokens);

        var request = Assert.Single(fake.Server.LogEntries).RequestMessage;
        Assert.Contains("\"stream\":true", request.Body, StringComparison.Ordinal);
        if (fake.Kind == ProviderKind.Openai)
        {
            Assert.Contains("\"include_usage\":true", request.Body, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_stream_that_ends_before_the_provider_finished_throws_after_its_deltas(string kind)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(200, fake.StreamBody(Deltas[..2], complete: false), "text/event-stream");

        var (chunks, failure) = await ReadUntilFailureAsync(fake.Provider.StreamAsync(FakeProvider.Model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.Equal(Deltas[..2], chunks.Select(c => c.TextDelta));
        Assert.DoesNotContain(chunks, c => c.IsLast);
        Assert.True(failure.Retryable);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_connection_dropped_mid_stream_throws_after_the_deltas_that_came(string kind)
    {
        string body;
        using (var template = new FakeProvider(kind))
        {
            body = template.StreamBody(Deltas[..3], complete: false);
        }

        await using var server = new CuttingServer(body);
        var definition = new ProviderDefinition
        {
            Name = $"cut-{kind}",
            Kind = kind == "openai" ? ProviderKind.Openai : ProviderKind.Anthropic,
            Endpoint = kind == "openai" ? $"{server.Url}/v1" : server.Url,
            TimeoutSeconds = 10,
            Models = [FakeProvider.Model],
        };
        using var provider = ChatClientProvider.Create(definition, FakeProvider.Key);

        var (chunks, failure) = await ReadUntilFailureAsync(provider.StreamAsync(FakeProvider.Model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.Equal(Deltas[..3], chunks.Select(c => c.TextDelta));
        Assert.True(failure.Retryable);
        Assert.DoesNotContain(FakeProvider.Key, failure.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("openai", 429, true)]
    [InlineData("anthropic", 429, true)]
    [InlineData("openai", 500, true)]
    [InlineData("anthropic", 529, true)]
    [InlineData("openai", 400, false)]
    [InlineData("anthropic", 400, false)]
    public async Task A_stream_refused_before_its_first_delta_maps_like_a_call(string kind, int status, bool retryable)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(status, fake.ErrorBody("some_error"), headers: new Dictionary<string, string> { ["Retry-After"] = "2" });

        var (chunks, failure) = await ReadUntilFailureAsync(fake.Provider.StreamAsync(FakeProvider.Model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.Empty(chunks);
        Assert.Equal(retryable, failure.Retryable);
        if (status == 429)
        {
            Assert.Equal(TimeSpan.FromSeconds(2), failure.RetryAfter);
        }
        else if (!retryable)
        {
            Assert.Null(failure.RetryAfter);
        }
    }

    [Fact]
    public async Task An_anthropic_error_event_mid_stream_throws_after_the_deltas()
    {
        using var fake = new FakeProvider("anthropic");
        var body = fake.StreamBody(Deltas[..2], complete: false) +
                   "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        fake.Answer(200, body, "text/event-stream");

        var (chunks, failure) = await ReadUntilFailureAsync(fake.Provider.StreamAsync(FakeProvider.Model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.Equal(Deltas[..2], chunks.Select(c => c.TextDelta));
        Assert.True(failure.Retryable);
        Assert.Contains("overloaded_error", failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    public async Task A_stream_of_garbage_is_a_failure_that_is_not_retried(string kind)
    {
        using var fake = new FakeProvider(kind);
        fake.Answer(200, fake.Kind == ProviderKind.Openai
            ? "data: {\"this is\": not json\n\n"
            : "event: message_start\ndata: {\"this is\": not json\n\n", "text/event-stream");

        var (chunks, failure) = await ReadUntilFailureAsync(fake.Provider.StreamAsync(FakeProvider.Model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.Empty(chunks);
        Assert.False(failure.Retryable, failure.ToString());
    }

    internal static async Task<List<ProviderChunk>> ReadAllAsync(IAsyncEnumerable<ProviderChunk> stream)
    {
        var chunks = new List<ProviderChunk>();
        await foreach (var chunk in stream)
        {
            chunks.Add(chunk);
        }

        return chunks;
    }

    internal static async Task<(List<ProviderChunk> Chunks, ProviderException Failure)> ReadUntilFailureAsync(IAsyncEnumerable<ProviderChunk> stream)
    {
        var chunks = new List<ProviderChunk>();
        var failure = await Assert.ThrowsAsync<ProviderException>(async () =>
        {
            await foreach (var chunk in stream)
            {
                chunks.Add(chunk);
            }
        });
        return (chunks, failure);
    }
}
