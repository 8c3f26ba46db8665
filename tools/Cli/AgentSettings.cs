using System.ComponentModel;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli;

/// <summary>What every command takes: the agent it is about and the host that serves it.</summary>
public class AgentSettings : CommandSettings
{
    [CommandArgument(0, "<agent>")]
    [Description("The agent's name: 1-64 of a-z 0-9 - _")]
    public string Agent { get; init; } = "";

    [CommandOption("--host <URL>")]
    [Description("The host's gRPC address. Default: $PAGENTS_HOST, else " + HostConnection.DefaultAddress)]
    public string? Host { get; init; }
}
