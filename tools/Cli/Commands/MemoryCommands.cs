using System.ComponentModel;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli.Commands;

public sealed class WorkingMemorySettings : AgentSettings
{
    [CommandOption("-s|--session <ID>")]
    [Description("The session whose turns to show. Default: default")]
    public string? Session { get; init; }
}

/// <summary>A session's recent turns, oldest first.</summary>
public sealed class WorkingMemoryCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<WorkingMemorySettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, WorkingMemorySettings settings, CancellationToken cancellationToken)
    {
        var memory = await host.Agents(settings).GetWorkingMemoryAsync(
            new AgentWorkingMemoryRequest { Agent = settings.Agent, SessionId = settings.Session ?? "" }, cancellationToken: cancellationToken);
        var session = Markup.Escape(settings.Session ?? "default");
        if (memory.Turns.Count == 0)
        {
            console.MarkupLine($"No turns in session [bold]{session}[/] of {Markup.Escape(settings.Agent)}.");
            return 0;
        }

        // One wide cell per turn rather than a column each for prompt and reply, which an 80-column terminal
        // would squeeze to a few words a line.
        var table = new Table().Border(TableBorder.Rounded).ShowRowSeparators()
            .Title($"[bold]Working memory of {Markup.Escape(settings.Agent)}, session {session}[/]")
            .AddColumn(new TableColumn("#").RightAligned())
            .AddColumn("Turn");
        var number = 1;
        foreach (var turn in memory.Turns)
        {
            table.AddRow(
                new Text(Formats.Count(number++)),
                new Markup(
                    $"[grey]{Formats.Time(turn.At)} · {Markup.Escape(turn.InteractionId)}[/]\n" +
                    $"[bold]prompt[/] {Markup.Escape(Formats.Shorten(turn.Prompt, 300))}\n" +
                    $"[bold]reply[/]  {Markup.Escape(Formats.Shorten(turn.Reply, 300))}"));
        }

        console.Write(table);
        return 0;
    }
}

public sealed class RecallSettings : AgentSettings
{
    [CommandArgument(0, "<query>")]
    [Description("What to look for in the agent's semantic memory")]
    public string Query { get; init; } = "";

    [CommandOption("-k|--top-k <N>")]
    [Description("How many memories at most. Default: the host's")]
    public int TopK { get; init; }

    [CommandOption("--min-similarity <S>")]
    [Description("Leave out memories less similar than this, 0..1")]
    public double MinSimilarity { get; init; }

    [CommandOption("-t|--task-type <TYPE>")]
    [Description("Only memories of this task type")]
    public string? TaskType { get; init; }

    [CommandOption("--successful-only")]
    [Description("Only memories of interactions that succeeded")]
    public bool SuccessfulOnly { get; init; }
}

/// <summary>The memories a prompt like the query would recall, most similar first.</summary>
public sealed class RecallCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<RecallSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, RecallSettings settings, CancellationToken cancellationToken)
    {
        var recalled = await host.Agents(settings).RecallMemoryAsync(
            new AgentRecallRequest
            {
                Agent = settings.Agent,
                Query = settings.Query,
                TopK = settings.TopK,
                MinSimilarity = settings.MinSimilarity,
                TaskType = settings.TaskType ?? "",
                SuccessfulOnly = settings.SuccessfulOnly,
            },
            cancellationToken: cancellationToken);
        if (recalled.Memories.Count == 0)
        {
            console.MarkupLine($"Nothing in the memory of {Markup.Escape(settings.Agent)} is like that.");
            return 0;
        }

        var table = new Table().Border(TableBorder.Rounded).ShowRowSeparators()
            .Title($"[bold]Recalled by {Markup.Escape(settings.Agent)}[/]")
            .AddColumn(new TableColumn("Similarity").RightAligned())
            .AddColumn("Memory");
        foreach (var memory in recalled.Memories)
        {
            var outcome = memory.Success ? "[green]succeeded[/]" : "[red]failed[/]";
            table.AddRow(
                new Text(Formats.Score(memory.Similarity)),
                new Markup(
                    $"[grey]{Markup.Escape(memory.Id)} · {Markup.Escape(memory.TaskType)} · [/]{outcome}[grey] · {Formats.Time(memory.Created)}[/]\n" +
                    Markup.Escape(Formats.Shorten(memory.Text, 300))));
        }

        console.Write(table);
        return 0;
    }
}

public sealed class EpisodesSettings : AgentSettings
{
    [CommandOption("--from <DAY>")]
    [Description("First UTC day, yyyy-MM-dd")]
    public string? From { get; init; }

    [CommandOption("--to <DAY>")]
    [Description("Last UTC day, yyyy-MM-dd")]
    public string? To { get; init; }

    [CommandOption("-n|--limit <N>")]
    [Description("How many episodes at most. Default: the host's")]
    public int Limit { get; init; }
}

/// <summary>The interactions recorded whole, by day.</summary>
public sealed class EpisodesCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<EpisodesSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, EpisodesSettings settings, CancellationToken cancellationToken)
    {
        var episodes = await host.Agents(settings).ListEpisodesAsync(
            new AgentEpisodesRequest { Agent = settings.Agent, From = settings.From ?? "", To = settings.To ?? "", Limit = settings.Limit },
            cancellationToken: cancellationToken);
        if (episodes.Episodes.Count == 0)
        {
            console.MarkupLine($"No episodes of {Markup.Escape(settings.Agent)} in that range.");
            return 0;
        }

        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]Episodes of {Markup.Escape(settings.Agent)}[/]")
            .AddColumn(new TableColumn("Day").NoWrap())
            .AddColumn(new TableColumn("Interaction").NoWrap())
            .AddColumn(new TableColumn("Size").RightAligned());
        foreach (var episode in episodes.Episodes)
        {
            table.AddRow(new Text(episode.Day), new Text(episode.InteractionId), new Text(Formats.Bytes(episode.Bytes)));
        }

        console.Write(table);
        console.MarkupLine($"[grey]{Formats.Count(episodes.Episodes.Count)} episodes; one in full: pagents memory {Markup.Escape(settings.Agent)} episode <interactionId>[/]");
        return 0;
    }
}

public sealed class EpisodeSettings : AgentSettings
{
    [CommandArgument(0, "<interactionId>")]
    [Description("The interaction to show")]
    public string InteractionId { get; init; } = "";
}

/// <summary>One interaction as it was recorded: request, reply, route and outcome, as indented JSON.</summary>
public sealed class EpisodeCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<EpisodeSettings>
{
    // Read by a person in a terminal, not embedded in a page: '+' and non-ASCII text stay as they are.
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public override async Task<int> ExecuteAsync(CommandContext context, EpisodeSettings settings, CancellationToken cancellationToken)
    {
        var episode = await host.Agents(settings).GetEpisodeAsync(
            new AgentEpisodeRequest { Agent = settings.Agent, InteractionId = settings.InteractionId }, cancellationToken: cancellationToken);
        console.WriteLine(JsonNode.Parse(episode.Json)?.ToJsonString(Indented) ?? episode.Json);
        return 0;
    }
}

public sealed class PurgeSettings : AgentSettings
{
    [CommandOption("-y|--yes")]
    [Description("Do not ask: purging cannot be undone")]
    public bool Yes { get; init; }
}

/// <summary>Forgets the agent: every memory tier and its statistics.</summary>
public sealed class PurgeCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<PurgeSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, PurgeSettings settings, CancellationToken cancellationToken)
    {
        if (!settings.Yes)
        {
            // A script has no one to answer the question: it must say --yes rather than purge by default.
            if (!console.Profile.Capabilities.Interactive)
            {
                throw new UsageException("--yes: purging cannot be undone; confirm it with --yes");
            }

            if (!await console.ConfirmAsync($"Purge every memory and statistic of [bold]{Markup.Escape(settings.Agent)}[/]?", defaultValue: false, cancellationToken))
            {
                console.WriteLine("Nothing purged.");
                return 0;
            }
        }

        var purged = await host.Agents(settings).PurgeMemoryAsync(new PurgeMemoryRequest { Agent = settings.Agent }, cancellationToken: cancellationToken);
        console.MarkupLine(
            $"[green]purged[/] {Markup.Escape(settings.Agent)}: {Formats.Count(purged.WorkingTurns)} working turns, " +
            $"{Formats.Count(purged.SemanticMemories)} semantic memories, {Formats.Count(purged.Episodes)} episodes");
        return 0;
    }
}
