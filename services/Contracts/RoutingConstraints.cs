using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Contracts;

/// <summary>
/// The hard constraints of routing: an arm that cannot take the request is left out before any ranking.
/// The learning service applies them, and so do the agents when they route in catalog order because the
/// learning service is down, so that both leave out the same arms for the same reasons.
/// </summary>
public static class RoutingConstraints
{
    /// <summary>USD the arm is expected to charge: the request's input tokens and <paramref name="outputTokens"/> at its catalog prices.</summary>
    public static double ExpectedCostUsd(CandidateArm candidate, long inputTokens, long outputTokens) =>
        ((candidate.InputPricePerMtok * inputTokens) + (candidate.OutputPricePerMtok * outputTokens)) / 1_000_000;

    /// <summary>"context-window", "capability" or "budget" when the arm cannot take the request; null when it can.</summary>
    public static string? ExclusionOf(CandidateArm candidate, RankRequest request, double expectedCostUsd)
    {
        if (candidate.ContextWindow > 0 && request.EstimatedInputTokens > candidate.ContextWindow)
        {
            return "context-window";
        }

        if (request.RequiredCapabilities.Any(c => !candidate.Capabilities.Contains(c)))
        {
            return "capability";
        }

        return request.HasBudget && expectedCostUsd > request.RemainingBudgetUsd ? "budget" : null;
    }
}
