using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Dashboard;

/// <summary>Everything the dashboard shows at one moment, with the learning curves of one selected agent.</summary>
public sealed record DashboardSnapshot(
    DateTimeOffset At,
    IReadOnlyList<AgentSummary> Agents,
    IReadOnlyList<ProviderSummary> Providers,
    CacheSummary Cache,
    string? SelectedAgent,
    IReadOnlyList<LearningCurve> Curves,
    IReadOnlyList<FeedItem> Feed);

public sealed record AgentSummary(string Name, long Interactions, double SuccessRate, double CostUsd, double MeanLatencyMs, MemoryTiers Memory);

public sealed record ProviderSummary(string Name, string Circuit, bool Simulated);

public sealed record MemoryTiers(long WorkingTurns, long WorkingBytes, long SemanticMemories, long SemanticBytes, long Episodes, long EpisodeBytes);

/// <param name="EstimatedSavingsUsd">Cache hits × the mean cost of an interaction of the listed agents: the cost the hits would have had.</param>
public sealed record CacheSummary(long ExactHits, long SemanticHits, long Misses, long Entries, double HitRate, double EstimatedSavingsUsd);

/// <summary>
/// One task type's learning curve: for each decision (oldest first) every arm's learned score right after
/// it, and each arm's share of the last <see cref="DashboardSnapshots.TrafficWindow"/> decisions.
/// Scores are null before the arm had any.
/// </summary>
public sealed record LearningCurve(string TaskType, IReadOnlyList<string> Arms, IReadOnlyList<long> Decisions, IReadOnlyList<IReadOnlyList<double?>> Scores, IReadOnlyList<IReadOnlyList<double>> TrafficShares);

/// <summary>Builds <see cref="DashboardSnapshot"/>s from the same service interfaces the public API uses.</summary>
public sealed class DashboardSnapshots(
    RecentActivity activity,
    IAgentInvoker invoker,
    IMemoryApi memory,
    ILearningApi learning,
    IGatewayApi gateway,
    TimeProvider time)
{
    public const int TrafficWindow = 20;
    public const int HistoryLimit = 500;

    /// <param name="tenant">Whose agents to show: the viewer's own tenant only.</param>
    /// <param name="selectedAgent">Whose learning curves to include; null or unknown: the most recently active agent's.</param>
    public async Task<DashboardSnapshot> BuildAsync(string tenant, string? selectedAgent, CancellationToken cancellationToken)
    {
        var agents = new List<AgentSummary>();
        foreach (var name in activity.Agents(tenant))
        {
            if (await SummariseAsync(new AgentId(tenant, name), cancellationToken) is { } summary)
            {
                agents.Add(summary);
            }
        }

        var health = await gateway.GetProviderHealthAsync(new ProviderHealthRequest(), cancellationToken);
        var selected = agents.Any(a => a.Name == selectedAgent) ? selectedAgent : agents.FirstOrDefault()?.Name;
        var curves = selected is null ? [] : await CurvesAsync(new AgentId(tenant, selected), cancellationToken);
        return new DashboardSnapshot(time.GetUtcNow(), agents, [.. health.Providers.Select(p => new ProviderSummary(p.Provider, p.Circuit, p.Simulated))], CacheOf(health.Cache ?? new ResponseCacheStats(), agents), selected, curves, activity.Feed(tenant));
    }

    private async Task<AgentSummary?> SummariseAsync(AgentId agent, CancellationToken cancellationToken)
    {
        // Purged since its last complete: no longer an agent to show.
        if (await invoker.LoadAsync(agent, cancellationToken) is not { Interactions: > 0 } aggregate)
        {
            return null;
        }

        var usage = await memory.GetUsageAsync(new GetMemoryUsageRequest { Agent = new AgentRef { Tenant = agent.Tenant, Agent = agent.Name } }, cancellationToken);
        return new AgentSummary(
            agent.Name,
            aggregate.Interactions,
            (double)aggregate.Successes / aggregate.Interactions,
            aggregate.CostUsd,
            aggregate.TotalLatencyMs / aggregate.Interactions,
            new MemoryTiers(usage.WorkingTurns, usage.WorkingBytes, usage.SemanticMemories, usage.SemanticBytes, usage.Episodes, usage.EpisodeBytes));
    }

    private static CacheSummary CacheOf(ResponseCacheStats cache, List<AgentSummary> agents)
    {
        var hits = cache.ExactHits + cache.SemanticHits;
        var lookups = hits + cache.Misses;
        var interactions = agents.Sum(a => a.Interactions);
        var meanCost = interactions == 0 ? 0 : agents.Sum(a => a.CostUsd) / interactions;
        return new CacheSummary(cache.ExactHits, cache.SemanticHits, cache.Misses, cache.Entries, lookups == 0 ? 0 : (double)hits / lookups, hits * meanCost);
    }

    private async Task<IReadOnlyList<LearningCurve>> CurvesAsync(AgentId agent, CancellationToken cancellationToken)
    {
        var history = await learning.GetHistoryAsync(
            new GetHistoryRequest { Tenant = agent.Tenant, Agent = agent.Name, Limit = HistoryLimit }, cancellationToken);
        return [.. history.Selections
            .Reverse()
            .GroupBy(s => s.TaskType, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => CurveOf(g.Key, [.. g]))];
    }

    private static LearningCurve CurveOf(string taskType, List<Selection> decisions)
    {
        var arms = decisions
            .SelectMany(d => d.Scores.Select(s => s.Arm).Append(d.Chosen))
            .Where(a => a is not null)
            .Select(KeyOf)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        var scores = arms.Select(arm => (IReadOnlyList<double?>)[.. decisions.Select(d => ScoreAfter(d, arm))]).ToList();
        var shares = arms.Select(arm => (IReadOnlyList<double>)[.. decisions.Select((_, i) => ShareUpTo(decisions, i, arm))]).ToList();
        return new LearningCurve(taskType, arms, [.. Enumerable.Range(1, decisions.Count).Select(i => (long)i)], scores, shares);
    }

    /// <summary>The arm's score in the decision's own context (complexity bucket), else its best-informed one.</summary>
    private static double? ScoreAfter(Selection decision, string arm)
    {
        var ofArm = decision.Scores.Where(s => s.Arm is not null && KeyOf(s.Arm) == arm).ToList();
        return (ofArm.FirstOrDefault(s => s.Context == decision.Context) ?? ofArm.MaxBy(s => s.Pulls))?.Score;
    }

    private static double ShareUpTo(List<Selection> decisions, int index, string arm)
    {
        var first = Math.Max(0, index - TrafficWindow + 1);
        var window = decisions.GetRange(first, index - first + 1);
        return (double)window.Count(d => d.Chosen is not null && KeyOf(d.Chosen) == arm) / window.Count;
    }

    private static string KeyOf(ArmRef arm) => $"{arm.Provider}/{arm.Model}";
}
