using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

public sealed class AdminSimulationTests
{
    [Fact]
    public async Task Breaking_a_provider_at_run_time_opens_its_circuit_and_healing_it_closes_it_again()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(),
            "--Resilience:BreakDuration", "00:00:01", "--Resilience:MaxRetries", "0", "--Resilience:MinimumThroughput", "3",
            "--Resilience:SamplingDuration", "00:00:00.5");

        // The agent first learns that sim-best is its best provider.
        for (var i = 0; i < 25; i++)
        {
            Assert.Equal(200, (await host.CompleteAsync("chaos", new { prompt = $"Warm-up {i}", sessionId = $"w{i}" })).Status);
        }

        // Let the circuit's sampling window forget the warm-up's successes.
        await Task.Delay(TimeSpan.FromMilliseconds(600));
        var (status, broken) = await host.SendAsync(HttpMethod.Put, "/admin/providers/sim-best/simulation", new { failureRate = 1.0 });
        Assert.Equal(200, status);
        Assert.Equal(1.0, Number(broken["failureRate"]));

        // Every complete still succeeds, through the other providers.
        for (var i = 0; i < 12; i++)
        {
            var (completeStatus, reply) = await host.CompleteAsync("chaos", new { prompt = $"Request {i}", sessionId = $"s{i}" });
            Assert.Equal(200, completeStatus);
            Assert.NotEqual("sim-best", reply["provider"]!.GetValue<string>());
        }

        var health = await host.GetAsync("/platform/agents/chaos/health");
        Assert.Equal("degraded", health["status"]!.GetValue<string>());
        Assert.Equal("open", health["providers"]!.AsArray().Single(p => p!["provider"]!.GetValue<string>() == "sim-best")!["state"]!.GetValue<string>());

        var (healedStatus, healed) = await host.SendAsync(HttpMethod.Delete, "/admin/providers/sim-best/simulation");
        Assert.Equal(200, healedStatus);
        Assert.Null(healed["failureRate"]);
        await Task.Delay(TimeSpan.FromMilliseconds(1200));

        // The first call after the break is a half-open probe; once it succeeds the circuit closes.
        var closed = false;
        for (var i = 0; i < 40 && !closed; i++)
        {
            await host.CompleteAsync("chaos", new { prompt = $"After healing {i}", sessionId = $"h{i}" });
            var after = await host.GetAsync("/platform/agents/chaos/health");
            closed = after["providers"]!.AsArray().Single(p => p!["provider"]!.GetValue<string>() == "sim-best")!["state"]!.GetValue<string>() == "closed";
        }

        Assert.True(closed, "the healed provider's circuit never closed");
    }

    [Theory]
    [InlineData("sim-best", """{"failureRate":2}""", 400, "failureRate:")]
    [InlineData("sim-best", """{"latencyMs":"slow"}""", 400, "latencyMs:")]
    [InlineData("sim-best", """{"speed":1}""", 400, "speed:")]
    [InlineData("sim-best", "not json", 400, "body:")]
    [InlineData("no-such-provider", """{"quality":0.5}""", 404, "name:")]
    public async Task Bad_simulation_changes_are_refused_naming_the_field(string provider, string body, int expected, string field)
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var response = await host.Rest.PutAsync($"/admin/providers/{provider}/simulation", content);

        Assert.Equal(expected, (int)response.StatusCode);
        Assert.StartsWith(field, (await TestHost.ReadObjectAsync(response))["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
