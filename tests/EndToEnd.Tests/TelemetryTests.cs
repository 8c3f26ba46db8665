using System.Collections.Concurrent;
using System.Diagnostics;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>OpenTelemetry as an operator sees it: a trace per turn with a span per step, and metrics to scrape.</summary>
public sealed class TelemetryTests : IDisposable
{
    private readonly ConcurrentBag<Activity> _finished = [];
    private readonly ActivityListener _listener;

    public TelemetryTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith("PersistentAgents.", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _finished.Add,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    [Fact]
    public async Task One_complete_is_one_trace_with_a_span_per_step_and_the_genai_attributes_on_the_provider_call()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var agent = $"traced-{Guid.NewGuid():N}"[..20];

        var (status, reply) = await host.CompleteAsync(agent, new { prompt = "Route this email to billing", taskType = "routing" });

        Assert.Equal(200, status);
        var turn = Assert.Single(_finished, a => a.OperationName == "agent.complete" && (string?)a.GetTagItem("persistent_agents.agent") == agent);
        var trace = _finished.Where(a => a.TraceId == turn.TraceId).ToList();
        Assert.Equal(reply["interactionId"]!.GetValue<string>(), turn.GetTagItem("persistent_agents.interaction_id"));
        foreach (var step in new[] { "memory.recall", "learning.route", "gateway.complete", "memory.remember", "events.publish" })
        {
            var span = Assert.Single(trace, a => a.OperationName == step);
            Assert.Equal(turn.SpanId, span.ParentSpanId);
        }

        var gatewayStep = trace.Single(a => a.OperationName == "gateway.complete");
        var call = Assert.Single(trace, a => a.OperationName.StartsWith("chat ", StringComparison.Ordinal) && a.Status != ActivityStatusCode.Error);
        Assert.Equal(gatewayStep.SpanId, call.ParentSpanId);
        Assert.Equal(ActivityKind.Client, call.Kind);
        Assert.Equal("chat", call.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("simulated", call.GetTagItem("gen_ai.system"));
        Assert.Equal(reply["model"]!.GetValue<string>(), call.GetTagItem("gen_ai.request.model"));
        Assert.Equal(reply["tokensIn"]!.GetValue<System.Text.Json.JsonElement>().GetInt64(), call.GetTagItem("gen_ai.usage.input_tokens"));
        Assert.True((long)call.GetTagItem("gen_ai.usage.output_tokens")! > 0);
    }

    [Fact]
    public async Task The_prometheus_endpoint_exposes_token_usage_duration_cost_cache_circuits_and_interactions_after_a_complete()
    {
        // The catalog's word makes sim-flaky the first choice; it fails, so the call falls back to sim-steady.
        const string Catalog = """
            simulated: always
            providers:
              - name: sim-flaky
                kind: simulated
                models:
                  - { name: flaky, inputPricePerMTok: 1.0, outputPricePerMTok: 2.0, quality: 0.99, simulation: { quality: 0.9, failureRate: 1, latencyMs: 1 } }
              - name: sim-steady
                kind: simulated
                models:
                  - { name: steady, inputPricePerMTok: 1.0, outputPricePerMTok: 2.0, quality: 0.1, simulation: { quality: 0.8, failureRate: 0, latencyMs: 1 } }
            """;
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), Catalog, "--Resilience:MaxRetries", "0");
        var (status, reply) = await host.CompleteAsync("measured", new { prompt = "Count my tokens please", taskType = "metrics" });
        Assert.Equal((200, "sim-steady"), (status, reply["provider"]!.GetValue<string>()));

        var text = await host.Rest.GetStringAsync(new Uri("/metrics", UriKind.Relative));

        foreach (var metric in new[]
        {
            "gen_ai_client_token_usage", "gen_ai_client_operation_duration_seconds", "persistent_agents_gateway_cost",
            "persistent_agents_gateway_cache_lookups", "persistent_agents_gateway_circuit_state", "persistent_agents_interactions",
        })
        {
            Assert.Contains(metric, text, StringComparison.Ordinal);
        }

        Assert.Contains("gen_ai_token_type=\"output\"", text, StringComparison.Ordinal);

        // Every metric the shipped Grafana dashboard queries is one the host exposes.
        var dashboard = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot.Find(), "deploy", "grafana", "persistent-agents.json"));
        var queried = System.Text.RegularExpressions.Regex.Matches(dashboard, "(gen_ai|persistent_agents)_[a-z_]+")
            .Select(m => System.Text.RegularExpressions.Regex.Replace(m.Value, "_(bucket|sum|count|total)$", ""))
            .Distinct()
            .ToList();
        Assert.NotEmpty(queried);
        Assert.All(queried, metric => Assert.Contains(metric, text, StringComparison.Ordinal));
        Assert.Matches(@"persistent_agents_interactions_total\{[^}]*persistent_agents_task_type=""metrics""[^}]*\} [1-9]", text);
    }
}
