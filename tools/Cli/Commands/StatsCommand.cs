using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli.Commands;

/// <summary>An agent's totals, what it learned per task type and arm, and the memory it holds.</summary>
public sealed class StatsCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<AgentSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, AgentSettings settings, CancellationToken cancellationToken)
    {
        var stats = await host.Agents(settings).GetStatsAsync(new GetStatsRequest { Agent = settings.Agent }, cancellationToken: cancellationToken);
        console.Write(Totals(stats));
        foreach (var table in Arms(stats))
        {
            console.Write(table);
        }

        console.MarkupLine("[grey]score: learned utility · share: of recent routing decisions · ★ preferred[/]");
        var memory = stats.Memory ?? new MemoryUsage();
        console.Write(Memory(memory));
        console.MarkupLine($"[grey]embedder: {Markup.Escape(memory.Embedder)}[/]");
        return 0;
    }

    private static Table Totals(AgentStats stats)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders()
            .Title($"[bold]{Markup.Escape(stats.Agent)}[/]")
            .AddColumn(new TableColumn("").NoWrap())
            .AddColumn(new TableColumn(""));
        table.AddRow("[bold]Interactions[/]", $"{Formats.Count(stats.TotalInteractions)} ([green]{Formats.Count(stats.Successes)} succeeded[/], {FailureCount(stats.Failures)})");
        table.AddRow("[bold]Cost[/]", Formats.Usd(stats.TotalCostUsd));
        table.AddRow("[bold]Tokens[/]", $"{Formats.Count(stats.TokensIn)} in, {Formats.Count(stats.TokensOut)} out");
        table.AddRow("[bold]Average latency[/]", Formats.Duration(stats.AverageLatencyMs));
        table.AddRow("[bold]Last activity[/]", Formats.Time(stats.LastActivity));
        return table;
    }

    /// <summary>One table per task type, one row per arm, so that each fits an 80-column terminal.</summary>
    private static IEnumerable<Table> Arms(AgentStats stats) => stats.TaskTypes.Select(taskType =>
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(taskType.TaskType)}[/]: {Formats.Count(taskType.Interactions)} interactions, {Formats.Usd(taskType.CostUsd)}")
            .AddColumn("Arm")
            .AddColumn(new TableColumn("Calls").RightAligned())
            .AddColumn(new TableColumn("Success").RightAligned())
            .AddColumn(new TableColumn("Quality").RightAligned())
            .AddColumn(new TableColumn("Cost").RightAligned())
            .AddColumn(new TableColumn("Score").RightAligned())
            .AddColumn(new TableColumn("Share").RightAligned());
        foreach (var arm in taskType.Arms)
        {
            table.AddRow(
                Formats.ArmMarkup(arm.Provider, arm.Model, arm.Provider == taskType.PreferredProvider && arm.Model == taskType.PreferredModel),
                Formats.Count(arm.Interactions),
                Formats.Percent(arm.SuccessRate),
                Formats.Score(arm.MeanQuality),
                Formats.Usd(arm.CostUsd),
                Formats.Score(arm.LearnedScore),
                Formats.Percent(arm.TrafficShare));
        }

        return table;
    });

    private static Table Memory(MemoryUsage memory)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title("[bold]Memory[/]")
            .AddColumn("Tier")
            .AddColumn(new TableColumn("Items").RightAligned())
            .AddColumn(new TableColumn("Size").RightAligned());
        table.AddRow("working", Formats.Count(memory.WorkingTurns), Formats.Bytes(memory.WorkingBytes));
        table.AddRow("semantic", Formats.Count(memory.SemanticMemories), Formats.Bytes(memory.SemanticBytes));
        table.AddRow("episodic", Formats.Count(memory.Episodes), Formats.Bytes(memory.EpisodeBytes));
        return table;
    }

    private static string FailureCount(long failures) =>
        failures == 0 ? "0 failed" : $"[red]{Formats.Count(failures)} failed[/]";
}
