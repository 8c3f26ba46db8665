using PersistentAgents.Bench.Learning.Strategies;

namespace PersistentAgents.Bench.Learning;

/// <summary>What one strategy did over one scenario's run.</summary>
internal sealed class RunResult(string strategy, int steps, int arms)
{
    public string Strategy { get; } = strategy;

    /// <summary>Cumulative pseudo-regret after each step.</summary>
    public double[] CumulativeRegret { get; } = new double[steps];

    /// <summary>The first-ranked arm (the routing decision) of each step.</summary>
    public Arm[] FirstRanked { get; } = new Arm[steps];

    /// <summary>How many steps each arm was ranked first, by arm index.</summary>
    public int[] FirstRankedCounts { get; } = new int[arms];

    public int Successes { get; set; }

    public double QualitySum { get; set; }

    public double CostUsd { get; set; }

    public double LatencyMsSum { get; set; }

    public int Steps => CumulativeRegret.Length;

    public double Regret => CumulativeRegret[^1];

    /// <summary>Mean quality per interaction, 0 for an interaction whose every attempt failed.</summary>
    public double MeanQuality => QualitySum / Steps;

    public double SuccessRate => (double)Successes / Steps;

    public double MeanLatencyMs => LatencyMsSum / Steps;
}

internal static class Simulation
{
    /// <summary>How far down the fallback chain one interaction goes.</summary>
    public const int MaxAttempts = 3;

    public static async Task<RunResult> RunAsync(World world, IRoutingStrategy strategy, CancellationToken cancellationToken)
    {
        var result = new RunResult(strategy.Name, world.Steps.Count, world.Scenario.Arms.Count);
        var regret = 0.0;
        foreach (var step in world.Steps)
        {
            var ranked = await strategy.RankAsync(step, cancellationToken);
            var first = ranked[0];
            // Pseudo-regret of the routing decision: expected utilities, so outcome noise does not count against it.
            regret += world.Utility(step, world.BestArm(step)) - world.Utility(step, first);
            result.CumulativeRegret[step.Index] = regret;
            result.FirstRanked[step.Index] = first;
            result.FirstRankedCounts[first.Index]++;

            var attempts = new List<AttemptResult>(MaxAttempts);
            foreach (var arm in ranked.Take(MaxAttempts))
            {
                var attempt = world.Attempt(step, arm);
                attempts.Add(attempt);
                if (attempt.Success)
                {
                    break;
                }
            }

            var served = attempts[^1];
            // A failed attempt is not billed; the reply is charged at the serving arm's prices.
            var cost = served.Success ? served.Arm.CostUsd(step.InputTokens, step.OutputTokens) : 0;
            var interaction = new Interaction(
                step,
                ranked,
                attempts,
                served.Success,
                served.Quality,
                cost,
                world.ReferenceCostUsd(step),
                attempts.Sum(a => a.LatencyMs));
            await strategy.RecordAsync(interaction, cancellationToken);

            result.Successes += served.Success ? 1 : 0;
            result.QualitySum += interaction.Quality;
            result.CostUsd += interaction.CostUsd;
            result.LatencyMsSum += interaction.LatencyMs;
        }

        return result;
    }
}
