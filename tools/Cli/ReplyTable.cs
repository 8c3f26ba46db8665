using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace PersistentAgents.Cli;

/// <summary>What a complete cost and how it was routed, under the reply's text.</summary>
public static class ReplyTable
{
    public static Table Of(CompleteReply reply)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders()
            .AddColumn(new TableColumn("").NoWrap())
            .AddColumn(new TableColumn(""));
        Add(table, "Interaction", new Text(reply.InteractionId));
        Add(table, "Task type", new Text($"{reply.TaskType} (session {reply.SessionId})"));
        Add(table, "Model", new Text(Formats.Arm(reply.Provider, reply.Model)));
        Add(table, "Tokens", new Text($"{Formats.Count(reply.TokensIn)} in, {Formats.Count(reply.TokensOut)} out"));
        Add(table, "Cost", new Text(Formats.Usd(reply.CostUsd)));
        Add(table, "Latency", new Text(Formats.Duration(reply.LatencyMs)));
        Add(table, "Quality", new Text(Formats.Score(reply.Quality)));
        Add(table, "Route", new Text($"{reply.Strategy}, {reply.RouteContext} prompt"));
        Add(table, "Fallback path", FallbackPath(reply.FallbackPath));
        Add(table, "Simulated", reply.Simulated ? new Markup("[yellow]yes[/]") : new Text("no"));
        if (reply.CacheHit)
        {
            Add(table, "Cache hit", new Text("yes"));
        }

        if (reply.MemoryIds.Count > 0)
        {
            Add(table, "Recalled", new Text($"{reply.MemoryIds.Count} memories: {string.Join(", ", reply.MemoryIds)}"));
        }

        foreach (var degradation in reply.Degraded)
        {
            Add(table, "Degraded", new Markup($"[yellow]{Markup.Escape(degradation)}[/]"));
        }

        if (reply.Experiment.Length > 0)
        {
            Add(table, "Experiment", new Text($"{reply.Experiment}, variant {reply.Variant}"));
        }

        return table;
    }

    private static void Add(Table table, string name, IRenderable value) => table.AddRow(new Markup($"[bold]{name}[/]"), value);

    /// <summary>Every provider tried, in order: why a reply came from the second choice is the first's failure.</summary>
    private static Markup FallbackPath(IEnumerable<FallbackAttempt> attempts) => new(string.Join(" → ", attempts.Select(attempt =>
    {
        var color = attempt.Outcome switch
        {
            "succeeded" => "green",
            "failed" => "red",
            _ => "grey",
        };
        var error = attempt.Error.Length > 0 ? ": " + Formats.Shorten(attempt.Error, 80) : "";
        return $"[{color}]{Markup.Escape(Formats.Arm(attempt.Provider, attempt.Model))}[/] " +
            Markup.Escape($"({attempt.Outcome}{error}, {Formats.Duration(attempt.LatencyMs)})");
    })));
}
