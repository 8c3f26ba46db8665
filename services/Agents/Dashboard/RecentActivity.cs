using System.Text.RegularExpressions;

namespace PersistentAgents.Agents.Dashboard;

/// <summary>One REST complete as the dashboard's live feed shows it.</summary>
public sealed record FeedItem(DateTimeOffset At, string Tenant, string Agent, int Status, double DurationMs, bool Streamed);

/// <summary>
/// The agents recently completed and the latest interactions, as seen on this host's REST pipeline. No
/// service lists agents, so the dashboard learns their names here; gRPC callers pass beside the HTTP
/// pipeline's view of the route and are neither listed nor in the feed.
/// </summary>
public sealed partial class RecentActivity
{
    public const int MaxAgents = 1000;
    public const int MaxFeedItems = 50;

    private readonly Lock _gate = new();
    private readonly Dictionary<AgentId, DateTimeOffset> _lastCompleteByAgent = [];
    private readonly Queue<FeedItem> _feed = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next recorded interaction, so that open event streams push it at once.</summary>
    public Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    /// <summary>The agent named by a complete route's path, or null for any other path.</summary>
    public static string? AgentOfCompletePath(string path)
    {
        var match = CompletePath().Match(path);
        return match.Success ? match.Groups["agent"].Value : null;
    }

    public void Record(FeedItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        TaskCompletionSource changed;
        lock (_gate)
        {
            // Only a successful complete proves the agent exists; a failed call of any name is only fed.
            if (item.Status == 200)
            {
                _lastCompleteByAgent[new AgentId(item.Tenant, item.Agent)] = item.At;
                if (_lastCompleteByAgent.Count > MaxAgents)
                {
                    _lastCompleteByAgent.Remove(_lastCompleteByAgent.MinBy(a => a.Value).Key);
                }
            }

            _feed.Enqueue(item);
            if (_feed.Count > MaxFeedItems)
            {
                _feed.Dequeue();
            }

            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    /// <summary>The tenant's agents, most recently active first.</summary>
    public IReadOnlyList<string> Agents(string tenant)
    {
        lock (_gate)
        {
            return [.. _lastCompleteByAgent.Where(a => a.Key.Tenant == tenant).OrderByDescending(a => a.Value).Select(a => a.Key.Name)];
        }
    }

    /// <summary>The tenant's interactions, newest first.</summary>
    public IReadOnlyList<FeedItem> Feed(string tenant)
    {
        lock (_gate)
        {
            return [.. _feed.Reverse().Where(f => f.Tenant == tenant)];
        }
    }

    [GeneratedRegex("^/platform/agents/(?<agent>[a-z0-9][a-z0-9_-]{0,63})/complete$")]
    private static partial Regex CompletePath();
}
