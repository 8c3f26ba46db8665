using PersistentAgents.Agents;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Host;

/// <summary>
/// Embedded mode, before the first request: a turn writes its episode, then its stats, then replies, so a
/// crash between the two leaves an episode that no stats count and no caller was ever given. Such episodes
/// are removed, which makes the stores agree again (the stats' last counted interaction tells them apart,
/// turns of an agent being serial). Episodes of an agent without stats are kept: nothing says which of them,
/// if any, was acknowledged (restored data, or a crash in an agent's very first turn).
/// </summary>
internal static class UnacknowledgedEpisodes
{
    public static async Task<int> SweepAsync(FileEpisodeStore episodes, IAgentStateStore state, ILogger logger, CancellationToken cancellationToken)
    {
        var removed = 0;
        foreach (var scope in await episodes.ListScopesAsync(cancellationToken))
        {
            if (await state.LoadAsync(new AgentId(scope.Tenant, scope.Agent), cancellationToken) is not { LastInteractionId.Length: > 0, LastActivity: { } last } aggregate)
            {
                continue;
            }

            foreach (var id in episodes.DeleteAfter(scope, aggregate.LastInteractionId, DateOnly.FromDateTime(last.UtcDateTime)))
            {
                logger.LogWarning("Agent {Tenant}/{Agent}: removed episode {InteractionId}, stored by a turn that stopped before its stats and was never acknowledged",
                    scope.Tenant, scope.Agent, id);
                removed++;
            }
        }

        return removed;
    }
}
