using System.ComponentModel;
using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli.Commands;

public sealed class FeedbackSettings : AgentSettings
{
    [CommandArgument(1, "<interactionId>")]
    [Description("The interaction rated, as complete printed it")]
    public string InteractionId { get; init; } = "";

    [CommandArgument(2, "<score>")]
    [Description("How good the reply was, from 0 to 1")]
    public double Score { get; init; }
}

/// <summary>A late quality signal for the arm that served one interaction; only the first per interaction counts.</summary>
public sealed class FeedbackCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<FeedbackSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FeedbackSettings settings, CancellationToken cancellationToken)
    {
        var reply = await host.Agents(settings).FeedbackAsync(
            new FeedbackRequest { Agent = settings.Agent, InteractionId = settings.InteractionId, Score = settings.Score },
            cancellationToken: cancellationToken);
        var arm = Markup.Escape(Formats.Arm(reply.Provider, reply.Model));
        var interaction = Markup.Escape(settings.InteractionId);
        console.MarkupLine(reply.Recorded
            ? $"[green]recorded[/]: {Formats.Score(settings.Score)} for {arm} on interaction {interaction}"
            : $"[yellow]already recorded[/]: only the first feedback on interaction {interaction} counts ({arm})");
        return 0;
    }
}
