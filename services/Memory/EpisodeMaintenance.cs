using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Memory;

/// <summary>
/// Keeps episodic memory within its retention window and turns each finished day of an agent's episodes
/// into one semantic memory that summarises it (what was asked, how it went, which model served it best),
/// so that what an agent learned outlives the raw episodes. Both steps are idempotent.
/// </summary>
public sealed class EpisodeMaintenance(
    IEpisodeStore episodes,
    IVectorStore vectors,
    MemoryService memory,
    IOptions<MemoryOptions> options,
    TimeProvider timeProvider,
    ILogger<EpisodeMaintenance> logger) : IMemoryMaintenanceApi
{
    public const string ConsolidatedTaskType = "consolidated";
    private const int MaxEpisodesPerDay = 10_000;
    private readonly MemoryOptions _options = options.Value;

    public static string ConsolidatedId(DateOnly day) => $"consolidated-{day:yyyy-MM-dd}";

    /// <returns>Episodes deleted by retention and days consolidated.</returns>
    public async Task<(long Deleted, int Consolidated)> RunAsync(CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        var cutoff = DateOnly.FromDateTime((now - _options.EpisodeRetention).UtcDateTime);
        var deleted = await episodes.DeleteBeforeAsync(cutoff, cancellationToken);

        var consolidated = 0;
        foreach (var scope in await episodes.ListScopesAsync(cancellationToken))
        {
            consolidated += await ConsolidateAgentAsync(scope, cancellationToken);
        }

        if (deleted > 0 || consolidated > 0)
        {
            logger.LogInformation("Memory maintenance: {Deleted} episodes past retention deleted, {Days} agent-days consolidated", deleted, consolidated);
        }

        return (deleted, consolidated);
    }

    public async Task<ConsolidateReply> ConsolidateAsync(ConsolidateRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return new ConsolidateReply { DaysConsolidated = await ConsolidateAgentAsync(MemoryService.ScopeOf(request.Agent), cancellationToken) };
    }

    /// <returns>How many finished days of the agent's episodes became a summary now.</returns>
    private async Task<int> ConsolidateAgentAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        var cutoff = DateOnly.FromDateTime((now - _options.EpisodeRetention).UtcDateTime);
        var lastDay = DateOnly.FromDateTime((now - _options.ConsolidateAfter).UtcDateTime);
        var consolidated = 0;
        var entries = await episodes.ListAsync(scope, cutoff, lastDay, int.MaxValue, cancellationToken);
        foreach (var day in entries.GroupBy(e => e.Day))
        {
            if (await vectors.GetAsync(scope, ConsolidatedId(day.Key), cancellationToken) is not null)
            {
                continue;
            }

            await ConsolidateAsync(scope, day.Key, day.Take(MaxEpisodesPerDay).ToList(), cancellationToken);
            consolidated++;
        }

        return consolidated;
    }

    private async Task ConsolidateAsync(AgentScope scope, DateOnly day, List<EpisodeEntry> entries, CancellationToken cancellationToken)
    {
        var facts = new List<EpisodeFacts>();
        foreach (var entry in entries)
        {
            if (await episodes.GetAsync(scope, entry.InteractionId, day, cancellationToken) is { } json && EpisodeFacts.TryRead(json, out var read))
            {
                facts.Add(read);
            }
        }

        if (facts.Count == 0)
        {
            return;
        }

        var summary = Summarise(day, facts);
        var vector = await memory.EmbedAsync(summary, cancellationToken);
        await vectors.UpsertAsync(
            new VectorRecord(ConsolidatedId(day), scope, vector, summary, ConsolidatedTaskType, Success: true, facts.Sum(f => f.CostUsd), timeProvider.GetUtcNow()),
            cancellationToken);
    }

    /// <summary>An extractive summary: counts, the best-served model per task type and sample requests.</summary>
    public static string Summarise(DateOnly day, IReadOnlyCollection<EpisodeFacts> facts)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Summary of {day:yyyy-MM-dd}: {facts.Count} interactions.");
        foreach (var taskType in facts.GroupBy(f => f.TaskType).OrderByDescending(g => g.Count()))
        {
            var succeeded = taskType.Count(f => f.Success);
            text.Append(CultureInfo.InvariantCulture, $" {taskType.Key}: {taskType.Count()} ({succeeded} succeeded)");
            var best = taskType.Where(f => f.Success && f.Model.Length > 0)
                .GroupBy(f => f.Model)
                .Select(g => (Model: g.Key, Quality: g.Average(f => f.Quality), Cost: g.Average(f => f.CostUsd), Count: g.Count()))
                .OrderByDescending(m => m.Quality)
                .ThenBy(m => m.Cost)
                .FirstOrDefault();
            if (best.Model is not null)
            {
                text.Append(CultureInfo.InvariantCulture, $", best served by {best.Model} (mean quality {best.Quality:0.00}, ${best.Cost:0.######} each, {best.Count} times)");
            }

            var samples = taskType.Select(f => f.Prompt).Distinct().Take(3).Select(p => p.Length <= 80 ? p : p[..80] + "…");
            text.Append("; requests such as: ").AppendJoin(" | ", samples).Append('.');
        }

        return text.ToString();
    }
}

/// <summary>What consolidation reads of one episode (the JSON the agent loop appends).</summary>
public sealed record EpisodeFacts(string TaskType, bool Success, string Prompt, string Model, double Quality, double CostUsd)
{
    public static bool TryRead(string json, out EpisodeFacts facts)
    {
        facts = null!;
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var reply = root.TryGetProperty("reply", out var r) ? r : default;
            string Text(JsonElement element, string name) =>
                element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";
            double Number(JsonElement element, string name) =>
                element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : 0;
            var provider = Text(reply, "provider");
            facts = new EpisodeFacts(
                Text(root, "taskType"),
                root.TryGetProperty("success", out var success) && success.ValueKind == JsonValueKind.True,
                Text(root, "prompt"),
                provider.Length == 0 ? "" : $"{provider}/{Text(reply, "model")}",
                Number(reply, "quality"),
                Number(reply, "costUsd"));
            return facts.TaskType.Length > 0;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>Runs <see cref="EpisodeMaintenance"/> shortly after start and then on its interval.</summary>
public sealed class EpisodeMaintenanceService(EpisodeMaintenance maintenance, IOptions<MemoryOptions> options, TimeProvider timeProvider, ILogger<EpisodeMaintenanceService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.MaintenanceInterval, timeProvider);
        do
        {
            try
            {
                await maintenance.RunAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Maintenance retries on its next tick; one bad run must not stop the host.
                logger.LogError(e, "Memory maintenance failed");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
