namespace PersistentAgents.Contracts;

/// <summary>
/// The Dapr components the code names (design §4), with the component type family each must have and
/// the app ids that use it. A test checks every YAML in components/ against this list.
/// </summary>
public static class DaprComponents
{
    public const string WorkingMemory = "agent-working-memory";
    public const string SemanticMemory = "agent-semantic-memory";
    public const string EpisodicMemory = "agent-episodic-memory";
    public const string ActorState = "agent-actor-state";
    public const string LearningState = "learning-state";
    public const string PubSub = "agent-pubsub";
    public const string Secrets = "agent-secrets";

    /// <summary>Dapr app ids (design §3).</summary>
    public static class Apps
    {
        public const string Agents = "agents";
        public const string Memory = "memory";
        public const string Learning = "learning";
        public const string Gateway = "gateway";
    }

    /// <param name="Name">The component's metadata.name.</param>
    /// <param name="TypePrefix">What its spec.type must start with, e.g. "state." or "bindings.".</param>
    /// <param name="Apps">App ids that must be in its scopes.</param>
    public sealed record Requirement(string Name, string TypePrefix, IReadOnlyList<string> Apps);

    public static IReadOnlyList<Requirement> Required { get; } =
    [
        new(WorkingMemory, "state.", [Apps.Memory]),
        new(SemanticMemory, "bindings.", [Apps.Memory]),
        new(EpisodicMemory, "bindings.", [Apps.Memory]),
        new(ActorState, "state.", [Apps.Agents]),
        new(LearningState, "state.", [Apps.Learning]),
        new(PubSub, "pubsub.", [Apps.Agents, Apps.Learning, Apps.Gateway]),
        new(Secrets, "secretstores.", [Apps.Gateway]),
    ];
}
