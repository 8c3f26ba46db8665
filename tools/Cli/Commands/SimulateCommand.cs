using System.ComponentModel;
using System.Diagnostics;
using Grpc.Core;
using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Cli;
using AgentsClient = PersistentAgents.Contracts.V1.Agents.AgentsClient;

namespace PersistentAgents.Cli.Commands;

public sealed class SimulateSettings : AgentSettings
{
    public const int MaxCount = 5000;

    [CommandOption("-n|--count <N>")]
    [Description("How many completes to send")]
    [DefaultValue(60)]
    public int Count { get; init; } = 60;

    [CommandOption("--task-types <TYPES>")]
    [Description("Comma-separated task types the prompts are spread over")]
    [DefaultValue("email_routing,legal_triage,general")]
    public string TaskTypes { get; init; } = "email_routing,legal_triage,general";

    [CommandOption("-p|--policy <POLICY>")]
    [Description("quality-first, balanced, cost-first or λ from 0 to 10. Default: the agent's")]
    public string? Policy { get; init; }

    [CommandOption("-s|--session <ID>")]
    [Description("The session the simulated turns are kept in")]
    [DefaultValue("simulation")]
    public string Session { get; init; } = "simulation";

    [CommandOption("--seed <N>")]
    [Description("The same seed sends the same prompts")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    public IReadOnlyList<string> TaskTypeList =>
        TaskTypes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override ValidationResult Validate() =>
        Count is < 1 or > MaxCount ? ValidationResult.Error($"--count: must be from 1 to {MaxCount}")
        : TaskTypeList.Count == 0 ? ValidationResult.Error("--task-types: name at least one task type")
        : ValidationResult.Success();
}

/// <summary>
/// Drives a workload against an agent, then shows what it learned: per task type and arm, how often the arm
/// was picked first in the first and in the last half of the run, next to its learned score, quality and cost.
/// </summary>
public sealed class SimulateCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<SimulateSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SimulateSettings settings, CancellationToken cancellationToken)
    {
        var client = host.Agents(settings);
        var elapsed = Stopwatch.StartNew();
        var run = await SendAsync(client, settings, cancellationToken);
        elapsed.Stop();

        var replies = run.Replies;
        console.MarkupLine(
            $"{Formats.Count(settings.Count)} completes in {Formats.Duration(elapsed.Elapsed.TotalMilliseconds)}: " +
            $"[green]{Formats.Count(replies.Count)} succeeded[/], {(run.Failures == 0 ? "0 failed" : $"[red]{Formats.Count(run.Failures)} failed[/]")}, " +
            $"{Formats.Usd(replies.Sum(r => r.CostUsd))}, mean quality {Formats.Score(replies.Count == 0 ? 0 : replies.Average(r => r.Quality))}");
        if (run.LastFailure is { } lastFailure)
        {
            if (replies.Count == 0)
            {
                throw lastFailure;
            }

            console.MarkupLineInterpolated($"[red]last failure: {lastFailure.Status.Detail}[/]");
        }

        var stats = await client.GetStatsAsync(new GetStatsRequest { Agent = settings.Agent }, cancellationToken: cancellationToken);
        var history = await client.GetLearningHistoryAsync(
            new LearningHistoryRequest { Agent = settings.Agent, Limit = settings.Count }, cancellationToken: cancellationToken);
        var ours = replies.Select(r => r.InteractionId).ToHashSet(StringComparer.Ordinal);
        // The history is newest first; the run's own decisions, oldest first, are its learning curve.
        var selections = history.Selections.Where(s => s.Chosen is not null && ours.Contains(s.InteractionId)).Reverse().ToList();
        foreach (var table in LearningTables(settings, stats, selections))
        {
            console.Write(table);
        }

        console.MarkupLine("[grey]half: share of that half's decisions that tried the arm first · ★ preferred[/]");

        return 0;
    }

    private sealed record Run(List<CompleteReply> Replies, int Failures, RpcException? LastFailure);

    /// <summary>
    /// One complete at a time, so that each is routed by what the ones before it taught. A failed complete is
    /// part of a workload and is counted; a request the host refuses as malformed would be refused every time.
    /// </summary>
    private async Task<Run> SendAsync(AgentsClient client, SimulateSettings settings, CancellationToken cancellationToken)
    {
        var prompts = new SimulatedPrompts(settings.TaskTypeList, settings.Seed);
        var replies = new List<CompleteReply>(settings.Count);
        var failures = 0;
        RpcException? lastFailure = null;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask($"Simulating {Formats.Count(settings.Count)} completes against {Markup.Escape(settings.Agent)}", maxValue: settings.Count);
                for (var number = 0; number < settings.Count; number++)
                {
                    var (taskType, prompt) = prompts.Next(number);
                    try
                    {
                        replies.Add(await client.CompleteAsync(
                            new CompleteRequest
                            {
                                Agent = settings.Agent,
                                Prompt = prompt,
                                TaskType = taskType,
                                SessionId = settings.Session,
                                Policy = settings.Policy ?? "",
                                // A cached reply reaches no provider and so teaches the agent nothing.
                                NoCache = true,
                            },
                            cancellationToken: cancellationToken));
                    }
                    catch (RpcException failure) when (failure.StatusCode is not (StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.Cancelled))
                    {
                        failures++;
                        lastFailure = failure;
                    }

                    task.Increment(1);
                }
            });
        return new Run(replies, failures, lastFailure);
    }

    /// <summary>One table per task type, one row per arm, best learned score first.</summary>
    private static IEnumerable<Table> LearningTables(SimulateSettings settings, AgentStats stats, List<Selection> selections) =>
        settings.TaskTypeList.Distinct(StringComparer.Ordinal).Select(taskType =>
        {
            var taskStats = stats.TaskTypes.FirstOrDefault(t => t.TaskType == taskType);
            var decisions = selections.Where(s => s.TaskType == taskType).ToList();
            var firstHalf = decisions.Take(decisions.Count / 2).ToList();
            var lastHalf = decisions.Skip(decisions.Count / 2).ToList();
            var table = new Table().Border(TableBorder.Rounded)
                .Title($"[bold]{Markup.Escape(taskType)}[/]: what {Markup.Escape(settings.Agent)} learned from {Formats.Count(decisions.Count)} decisions")
                .AddColumn("Arm")
                .AddColumn(new TableColumn("First half").RightAligned())
                .AddColumn(new TableColumn("Last half").RightAligned())
                .AddColumn(new TableColumn("Score").RightAligned())
                .AddColumn(new TableColumn("Quality").RightAligned())
                .AddColumn(new TableColumn("Cost").RightAligned());
            var arms = (taskStats?.Arms.Select(a => (a.Provider, a.Model)) ?? [])
                .Concat(decisions.Select(s => (s.Chosen.Provider, s.Chosen.Model)))
                .Distinct()
                .Select(arm => (Arm: arm, Stats: taskStats?.Arms.FirstOrDefault(a => a.Provider == arm.Provider && a.Model == arm.Model)))
                .OrderByDescending(arm => arm.Stats?.LearnedScore ?? 0);
            foreach (var (arm, armStats) in arms)
            {
                var preferred = taskStats is not null && arm.Provider == taskStats.PreferredProvider && arm.Model == taskStats.PreferredModel;
                table.AddRow(
                    Formats.ArmMarkup(arm.Provider, arm.Model, preferred),
                    Share(firstHalf, arm),
                    Share(lastHalf, arm),
                    armStats is null ? "–" : Formats.Score(armStats.LearnedScore),
                    armStats is null ? "–" : Formats.Score(armStats.MeanQuality),
                    armStats is null ? "–" : Formats.Usd(armStats.CostUsd));
            }

            if (table.Rows.Count == 0)
            {
                table.AddRow("[grey]no interaction succeeded[/]", "–", "–", "–", "–", "–");
            }

            return table;
        });

    private static string Share(List<Selection> decisions, (string Provider, string Model) arm) => decisions.Count == 0
        ? "–"
        : Formats.Percent((double)decisions.Count(s => s.Chosen.Provider == arm.Provider && s.Chosen.Model == arm.Model) / decisions.Count);
}
