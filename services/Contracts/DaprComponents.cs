namespace PersistentAgents.Contracts;

/// <summary>
/// The Dapr components the code names (docs/architecture.md, 'Dapr components'), with the component type
/// family each must have and the app ids that use it. A test checks every YAML in components/ against this
/// list.
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
    public const string GatewayState = "gateway-state";

    /// <summary>Dapr app ids (docs/architecture.md, 'Services').</summary>
    public static class Apps
    {
        public const string Agents = "agents";
        public const string Memory = "memory";
        public const string Learning = "learning";
        public const string Gateway = "gateway";
    }

    /// <summary>
    /// Where each service listens in distributed mode (dapr.yaml, docker-compose.yml and the Helm chart use
    /// the same numbers). memory, learning and gateway serve cleartext HTTP/2 (app-protocol grpc); agents
    /// serves HTTP/1.1 on its app port (actors, REST, its agent-tasks subscription; app-protocol http) and
    /// its public gRPC API on a second, HTTP/2 port, since Kestrel cannot serve both on one cleartext port.
    /// </summary>
    public static class AppPorts
    {
        public const int Agents = 5100;
        public const int AgentsGrpc = 5110;
        public const int Memory = 5101;
        public const int Learning = 5102;
        public const int Gateway = 5103;
    }

    /// <summary>The Dapr Configuration every app runs with (components/config.yaml).</summary>
    public const string Configuration = "agent-config";

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
        new(GatewayState, "state.", [Apps.Gateway]),
    ];
}
