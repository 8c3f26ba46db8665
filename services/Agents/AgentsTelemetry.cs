using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace PersistentAgents.Agents;

/// <summary>
/// The agent loop's traces (a span per step of a turn: memory recall, routing, the gateway, remembering,
/// the event) and its metrics (interactions and their duration by task type and outcome, steps skipped
/// because a dependency failed).
/// </summary>
public static class AgentsTelemetry
{
    public const string Name = "PersistentAgents.Agents";

    public static readonly ActivitySource Source = new(Name);

    private static readonly Meter Meter = new(Name);

    private static readonly Counter<long> Interactions = Meter.CreateCounter<long>(
        "persistent_agents.interactions", "{interaction}", "Completed turns by task type and outcome.");

    private static readonly Histogram<double> TurnDuration = Meter.CreateHistogram<double>(
        "persistent_agents.complete.duration", "s", "Duration of whole turns, memory and providers included.");

    private static readonly Counter<long> Degradations = Meter.CreateCounter<long>(
        "persistent_agents.degradations", "{step}", "Steps a turn went without because a dependency failed, by component.");

    public static Activity? StartTurn(AgentId agent, string taskType, string interactionId)
    {
        var activity = Source.StartActivity("agent.complete");
        activity?.SetTag("persistent_agents.tenant", agent.Tenant);
        activity?.SetTag("persistent_agents.agent", agent.Name);
        activity?.SetTag("persistent_agents.task_type", taskType);
        activity?.SetTag("persistent_agents.interaction_id", interactionId);
        return activity;
    }

    public static Activity? StartStep(string name) => Source.StartActivity(name);

    /// <summary>Marks the turn as degraded: an event per skipped step, so a trace shows what the reply went without.</summary>
    public static void Degraded(Activity? turn, string component, string degradation)
    {
        turn?.SetTag("persistent_agents.degraded", true);
        turn?.AddEvent(new ActivityEvent("degraded", tags: new ActivityTagsCollection { ["persistent_agents.degradation"] = degradation }));
        Degradations.Add(1, new KeyValuePair<string, object?>("persistent_agents.component", component));
    }

    public static void Completed(string taskType, bool success, TimeSpan duration)
    {
        KeyValuePair<string, object?>[] tags = [new("persistent_agents.task_type", taskType), new("persistent_agents.success", success)];
        Interactions.Add(1, tags);
        TurnDuration.Record(duration.TotalSeconds, tags);
    }
}
