namespace PersistentAgents.Bench.Learning;

/// <param name="Moved">
/// Interactions until the trailing window of <see cref="Adaptation.Window"/> first had the changed arm ranked first
/// in under <see cref="Adaptation.LeftShare"/> of them after a degradation, or in at least
/// <see cref="Adaptation.BackShare"/> after a recovery; null: never.
/// </param>
/// <param name="Converged">
/// Interactions that went by before the first run of <see cref="Adaptation.Window"/> in which at least
/// <see cref="Adaptation.RequiredInWindow"/> had the oracle's best arm ranked first; null: never.
/// </param>
internal sealed record AdaptationResult(int? Moved, int? Converged);

/// <summary>
/// How a strategy followed a change point, over the interactions of the change's task types from the change until
/// the next change point: how soon it moved its traffic (away from a degraded arm, back to a recovered one) and how
/// soon it converged on the oracle's choice.
/// </summary>
internal static class Adaptation
{
    public const int Window = 20;
    public const int RequiredInWindow = 16;
    public const double LeftShare = 0.1;
    public const double BackShare = 0.5;

    public static AdaptationResult Of(World world, RunResult run, ChangePoint change)
    {
        var end = world.Scenario.ChangePoints.Where(c => c.Step > change.Step).Select(c => c.Step).DefaultIfEmpty(world.Steps.Count).Min();
        var affected = world.Steps
            .Skip(change.Step)
            .Take(end - change.Step)
            .Where(s => change.TaskTypes.Contains(s.TaskType))
            .ToList();
        var onChanged = affected.Select(s => run.FirstRanked[s.Index] == change.Changed).ToList();
        var moved = FirstWindowEnd(onChanged, count => change.Recovers ? count >= BackShare * Window : count < LeftShare * Window);
        var onBest = affected.Select(s => run.FirstRanked[s.Index] == world.BestArm(s)).ToList();
        var converged = FirstWindowEnd(onBest, count => count >= RequiredInWindow) - Window;
        return new AdaptationResult(moved, converged);
    }

    /// <returns>How many interactions the first trailing window whose count of hits passes ends at; null: none.</returns>
    private static int? FirstWindowEnd(List<bool> hits, Func<int, bool> passes)
    {
        var inWindow = 0;
        for (var i = 0; i < hits.Count; i++)
        {
            inWindow += hits[i] ? 1 : 0;
            if (i >= Window)
            {
                inWindow -= hits[i - Window] ? 1 : 0;
            }

            if (i >= Window - 1 && passes(inWindow))
            {
                return i + 1;
            }
        }

        return null;
    }
}
