using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli.Commands;

/// <summary>Whether the agent can be served, and the circuit of every provider it may be routed to.</summary>
public sealed class HealthCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<AgentSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, AgentSettings settings, CancellationToken cancellationToken)
    {
        var health = await host.Agents(settings).GetHealthAsync(new GetHealthRequest { Agent = settings.Agent }, cancellationToken: cancellationToken);
        var statusColor = health.Status switch
        {
            "ok" => "green",
            "degraded" => "yellow",
            _ => "red",
        };
        console.MarkupLine($"[bold]{Markup.Escape(health.Agent)}[/]: [{statusColor}]{Markup.Escape(health.Status)}[/], last activity {Formats.Time(health.LastActivity)}");

        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("Provider")
            .AddColumn("Circuit")
            .AddColumn("Simulated");
        foreach (var provider in health.Providers)
        {
            var circuitColor = provider.State switch
            {
                "closed" => "green",
                "half-open" => "yellow",
                _ => "red",
            };
            table.AddRow(Markup.Escape(provider.Provider), $"[{circuitColor}]{Markup.Escape(provider.State)}[/]", provider.Simulated ? "yes" : "no");
        }

        console.Write(table);
        return 0;
    }
}
