using System.Diagnostics;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using static PersistentAgents.Gateway.Tests.StreamingTests;

namespace PersistentAgents.Gateway.Tests;

public sealed class SimulatedProviderTests
{
    private static ModelDefinition Model(double failureRate = 0, double latencyMs = 0, double quality = 0.8, double midStream = 0) => new()
    {
        Name = "sim-model",
        Quality = quality,
        Simulation = new SimulationDefinition
        {
            FailureRate = failureRate, LatencyMs = latencyMs, Quality = quality, MidStreamFailureRate = midStream,
            TaskTypes = { ["summarise"] = new SimulationBehaviour { Quality = 0.4, LatencyMs = 5 } },
        },
    };

    [Fact]
    public async Task A_simulated_stream_is_the_reply_word_by_word_then_the_quality()
    {
        var provider = new SimulatedProvider("sim");
        var model = Model();

        var completion = await provider.CompleteAsync(model, "email_routing", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None);
        var chunks = await ReadAllAsync(provider.StreamAsync(model, "email_routing", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.True(chunks.Count > 5);
        Assert.Equal(completion.Text, string.Concat(chunks.Select(c => c.TextDelta)));
        Assert.All(chunks.SkipLast(1), c => Assert.False(string.IsNullOrWhiteSpace(c.TextDelta)));
        Assert.Equal(new ProviderChunk("", ReportedQuality: 0.8, IsLast: true, FinishReason: Microsoft.Extensions.AI.ChatFinishReason.Stop), chunks[^1]);
    }

    [Fact]
    public async Task A_simulated_stream_spreads_its_latency_over_the_words()
    {
        var provider = new SimulatedProvider("sim");
        var model = Model(latencyMs: 300);
        await ReadAllAsync(provider.StreamAsync(Model(), "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None)); // warm-up
        var arrivals = new List<TimeSpan>();
        var clock = Stopwatch.StartNew();

        await foreach (var _ in provider.StreamAsync(model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None))
        {
            arrivals.Add(clock.Elapsed);
        }

        // 300 ms ± 20 % over the words: the last word comes after at least 240 ms, and most of that wait lies
        // between the first word and the last (delays can only grow on a busy machine, never shrink).
        Assert.True(arrivals[^1] >= TimeSpan.FromMilliseconds(235), $"last word after {arrivals[^1]}");
        Assert.True(arrivals[^1] - arrivals[0] >= TimeSpan.FromMilliseconds(200), $"first word after {arrivals[0]}, last after {arrivals[^1]}");
    }

    [Fact]
    public async Task A_failing_simulated_provider_fails_before_the_first_word()
    {
        var provider = new SimulatedProvider("sim");

        var (chunks, failure) = await ReadUntilFailureAsync(provider.StreamAsync(Model(failureRate: 1), "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

        Assert.Empty(chunks);
        Assert.True(failure.Retryable);
    }

    [Fact]
    public async Task A_mid_stream_failure_comes_after_some_words_and_never_with_a_last_chunk()
    {
        var provider = new SimulatedProvider("sim");

        for (var i = 0; i < 20; i++)
        {
            var (chunks, failure) = await ReadUntilFailureAsync(provider.StreamAsync(Model(midStream: 1), "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));

            Assert.NotEmpty(chunks);
            Assert.DoesNotContain(chunks, c => c.IsLast);
            Assert.True(failure.Retryable);
        }
    }

    [Fact]
    public async Task An_override_changes_every_model_and_task_type_until_reset()
    {
        var provider = new SimulatedProvider("sim");
        var model = Model(quality: 0.8);
        var other = Model(quality: 0.3);

        provider.Override(failureRate: null, latencyMs: 1, quality: 0.1);

        Assert.Equal(0.1, provider.CurrentBehaviour(model, "email_routing").Quality);
        Assert.Equal(0.1, provider.CurrentBehaviour(other, "summarise").Quality);
        Assert.Equal(1, provider.CurrentBehaviour(model, "summarise").LatencyMs);
        Assert.Equal(0, provider.CurrentBehaviour(model, "summarise").FailureRate); // not overridden: the catalog's
        Assert.Equal(0.1, (await provider.CompleteAsync(model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None)).ReportedQuality);
        Assert.Equal(new SimulationOverride(null, 1, 0.1), provider.CurrentOverride);

        provider.Override(failureRate: 1, latencyMs: null, quality: null);
        await Assert.ThrowsAsync<ProviderException>(() => provider.CompleteAsync(model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None));
        Assert.Equal(0.4, provider.CurrentBehaviour(model, "summarise").Quality); // the previous override is replaced

        provider.ResetOverride();
        Assert.True(provider.CurrentOverride.IsEmpty);
        Assert.Equal(0.8, provider.CurrentBehaviour(model, "email_routing").Quality);
        Assert.Equal(5, provider.CurrentBehaviour(model, "summarise").LatencyMs);
        Assert.Equal(0.8, (await provider.CompleteAsync(model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None)).ReportedQuality);
    }

    [Theory]
    [InlineData(-0.1, null, null, null, "failureRate")]
    [InlineData(1.5, null, null, null, "failureRate")]
    [InlineData(double.NaN, null, null, null, "failureRate")]
    [InlineData(null, -1.0, null, null, "latencyMs")]
    [InlineData(null, 600_001.0, null, null, "latencyMs")]
    [InlineData(null, null, 1.01, null, "quality")]
    [InlineData(null, null, -0.5, null, "quality")]
    [InlineData(null, null, null, 2.0, "midStreamFailureRate")]
    public void An_override_out_of_range_is_refused_naming_the_field(double? failureRate, double? latencyMs, double? quality, double? midStream, string field)
    {
        var provider = new SimulatedProvider("sim");
        provider.Override(0.5, null, null);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => provider.Override(failureRate, latencyMs, quality, midStream));

        Assert.Equal(field, error.ParamName);
        Assert.StartsWith($"{field}: must be between", error.Message, StringComparison.Ordinal);
        Assert.Equal(new SimulationOverride(0.5, null, null), provider.CurrentOverride); // nothing changed
    }

    [Fact]
    public void Overrides_at_the_edges_of_the_ranges_are_accepted()
    {
        var provider = new SimulatedProvider("sim");

        provider.Override(0, 0, 0, 0);
        provider.Override(1, 600_000, 1, 1);

        Assert.Equal(new SimulationOverride(1, 600_000, 1, 1), provider.CurrentOverride);
    }

    [Fact]
    public async Task Overrides_and_calls_may_run_at_the_same_time()
    {
        var provider = new SimulatedProvider("sim");
        var model = Model();

        var calls = Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
        {
            if (i % 2 == 0)
            {
                provider.Override(0, 0, (i % 10) / 10.0);
                return;
            }

            var completion = await provider.CompleteAsync(model, "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), CancellationToken.None);
            Assert.InRange(completion.ReportedQuality!.Value, 0, 1);
        }));
        await Task.WhenAll(calls);
    }

    [Fact]
    public async Task A_cancelled_simulated_stream_stops()
    {
        var provider = new SimulatedProvider("sim");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => ReadAllAsync(provider.StreamAsync(Model(latencyMs: 10_000), "t", FakeProvider.Messages, new Microsoft.Extensions.AI.ChatOptions(), cancel.Token)));
    }
}
