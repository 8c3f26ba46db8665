using System.Diagnostics;
using System.Diagnostics.Metrics;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Gateway;

/// <summary>
/// The gateway's traces and metrics, named after the OpenTelemetry GenAI semantic conventions where they
/// fit (<c>gen_ai.*</c>): a client span per provider attempt, token usage and operation duration
/// histograms; and the platform's own: cost, cache hits, fallbacks, circuit states.
/// </summary>
public static class GatewayTelemetry
{
    public const string Name = "PersistentAgents.Gateway";

    public static readonly ActivitySource Source = new(Name);

    private static readonly Meter Meter = new(Name);

    private static readonly Histogram<long> TokenUsage = Meter.CreateHistogram<long>(
        "gen_ai.client.token.usage", "{token}", "Tokens used per provider call, by gen_ai.token.type (input or output).");

    private static readonly Histogram<double> OperationDuration = Meter.CreateHistogram<double>(
        "gen_ai.client.operation.duration", "s", "Duration of provider calls, failed ones included.");

    private static readonly Counter<double> Cost = Meter.CreateCounter<double>(
        "persistent_agents.gateway.cost", "USD", "What provider calls cost at the catalog's prices.");

    private static readonly Counter<long> CacheLookups = Meter.CreateCounter<long>(
        "persistent_agents.gateway.cache.lookups", "{lookup}", "Response cache lookups by result: exact, semantic or miss.");

    private static readonly Counter<long> Fallbacks = Meter.CreateCounter<long>(
        "persistent_agents.gateway.fallbacks", "{call}", "Provider calls that failed and let the next candidate try.");

    /// <summary>
    /// The circuit state of each provider as a gauge: 0 closed, 1 half-open, 2 open. On the host's own meter
    /// (from its IMeterFactory), since it observes that host's circuits.
    /// </summary>
    public static void ObserveCircuits(Meter hostMeter, Func<IEnumerable<(string Provider, string State)>> circuits) =>
        hostMeter.CreateObservableGauge(
            "persistent_agents.gateway.circuit.state",
            () => circuits().Select(c => new Measurement<int>(
                c.State switch { "open" => 2, "half-open" => 1, _ => 0 },
                new KeyValuePair<string, object?>("gen_ai.provider.name", c.Provider))),
            "{state}",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.");

    /// <summary>A client span for one call of one provider's model (GenAI conventions: "chat {model}").</summary>
    public static Activity? StartAttempt(string system, ArmRef arm, string agent, string taskType)
    {
        var activity = Source.StartActivity($"chat {arm.Model}", ActivityKind.Client);
        activity?.SetTag("gen_ai.operation.name", "chat");
        activity?.SetTag("gen_ai.system", system);
        activity?.SetTag("gen_ai.provider.name", arm.Provider);
        activity?.SetTag("gen_ai.request.model", arm.Model);
        activity?.SetTag("persistent_agents.agent", agent);
        activity?.SetTag("persistent_agents.task_type", taskType);
        return activity;
    }

    public static void Succeeded(Activity? activity, string system, ArmRef arm, long tokensIn, long tokensOut, double costUsd, TimeSpan duration)
    {
        activity?.SetTag("gen_ai.response.model", arm.Model);
        activity?.SetTag("gen_ai.usage.input_tokens", tokensIn);
        activity?.SetTag("gen_ai.usage.output_tokens", tokensOut);
        activity?.SetTag("persistent_agents.cost_usd", costUsd);
        var tags = Tags(system, arm);
        TokenUsage.Record(tokensIn, [.. tags, new("gen_ai.token.type", "input")]);
        TokenUsage.Record(tokensOut, [.. tags, new("gen_ai.token.type", "output")]);
        OperationDuration.Record(duration.TotalSeconds, tags);
        Cost.Add(costUsd, tags);
    }

    public static void Failed(Activity? activity, string system, ArmRef arm, string errorType, TimeSpan duration)
    {
        activity?.SetStatus(ActivityStatusCode.Error, errorType);
        activity?.SetTag("error.type", errorType);
        OperationDuration.Record(duration.TotalSeconds, [.. Tags(system, arm), new("error.type", errorType)]);
        Fallbacks.Add(1, Tags(system, arm));
    }

    public static void CacheLookup(string result) => CacheLookups.Add(1, new KeyValuePair<string, object?>("result", result));

    private static KeyValuePair<string, object?>[] Tags(string system, ArmRef arm) =>
    [
        new("gen_ai.system", system),
        new("gen_ai.provider.name", arm.Provider),
        new("gen_ai.request.model", arm.Model),
    ];
}
