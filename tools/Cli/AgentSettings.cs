using System.ComponentModel;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli;

/// <summary>What every command takes: the host that serves it and the key to present.</summary>
public class HostSettings : CommandSettings
{
    [CommandOption("--host <URL>")]
    [Description("The host's gRPC address. Default: $" + HostConnection.AddressVariable + ", else " + HostConnection.DefaultAddress)]
    public string? Host { get; init; }

    [CommandOption("--api-key <KEY>")]
    [Description("The API key, when the host requires keys. Default: $" + HostConnection.ApiKeyVariable)]
    public string? ApiKey { get; init; }
}

/// <summary>What every agent command takes: the agent it is about, besides the host.</summary>
public class AgentSettings : HostSettings
{
    [CommandArgument(0, "<agent>")]
    [Description("The agent's name: 1-64 of a-z 0-9 - _")]
    public string Agent { get; init; } = "";
}
