using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Routing;

/// <summary>
/// The route when the learning service cannot rank: the catalog's own order, after the same hard constraints
/// the learning service applies, with the providers whose circuit is open at the end of the chain (a
/// half-open probe may still find them healthy). Nothing is learned, so nothing is sampled.
/// </summary>
public static class CatalogOrderRanking
{
    public const string Strategy = "catalog-order";

    public static RankReply Rank(RankRequest request)
    {
        var reply = new RankReply { Strategy = Strategy };
        var eligible = new List<CandidateArm>();
        foreach (var candidate in request.Candidates.DistinctBy(c => c.Arm))
        {
            var expectedCost = RoutingConstraints.ExpectedCostUsd(candidate, request.EstimatedInputTokens, request.EstimatedOutputTokens);
            if (RoutingConstraints.ExclusionOf(candidate, request, expectedCost) is { } reason)
            {
                reply.Excluded.Add(new ExcludedArm { Arm = candidate.Arm, Reason = reason });
            }
            else
            {
                eligible.Add(candidate);
            }
        }

        // OrderByDescending is stable: within the available and the unavailable arms the catalog's order stays.
        reply.Ranked.AddRange(eligible.OrderByDescending(c => c.Available).Select(c => c.Arm));
        return reply;
    }
}
