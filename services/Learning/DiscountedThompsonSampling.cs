namespace PersistentAgents.Learning;

public sealed class LearningOptions
{
    /// <summary>
    /// Per-outcome decay of the observed counts of every arm in a group. 0.97 gives an effective memory
    /// of about 33 outcomes, so a degraded arm loses its traffic within tens of interactions.
    /// </summary>
    public double Discount { get; set; } = 0.97;

    /// <summary>How many outcomes the catalog prior is worth.</summary>
    public double PriorStrength { get; set; } = 2;

    /// <summary>
    /// λ: utility lost per unit of relative cost (the reply's cost over the most expensive model's cost
    /// for the same tokens). 0 ignores cost; 1 makes the priciest model pay its whole quality.
    /// </summary>
    public double CostWeight { get; set; } = 0.2;
}

/// <summary>
/// Thompson sampling on Beta posteriors of utility = quality on success − λ · relative cost, with
/// discounting so that the bandit follows drift. Pure functions over the posteriors; storage is elsewhere.
/// </summary>
public sealed class DiscountedThompsonSampling(LearningOptions options)
{
    public string Name => FormattableString.Invariant($"thompson-discounted(gamma={options.Discount},lambda={options.CostWeight})");

    public ArmPosterior Prior(double declaredQuality, double relativeCost)
    {
        var utility = Math.Clamp(declaredQuality - (options.CostWeight * relativeCost), 0.01, 0.99);
        return new ArmPosterior(1 + (options.PriorStrength * utility), 1 + (options.PriorStrength * (1 - utility)), 0, 0, 0);
    }

    public static double Sample(ArmPosterior posterior, Random random) => BetaDistribution.Sample(posterior.Alpha, posterior.Beta, random);

    /// <summary>Utility 0..1 of one successful reply; a failure's utility is 0.</summary>
    public double Utility(double quality, double costUsd, double referenceCostUsd)
    {
        var relativeCost = referenceCostUsd > 0 ? costUsd / referenceCostUsd : 0;
        return Math.Clamp(quality - (options.CostWeight * relativeCost), 0, 1);
    }

    public ArmPosterior Decay(ArmPosterior posterior) =>
        posterior with { Successes = posterior.Successes * options.Discount, Failures = posterior.Failures * options.Discount };

    public static ArmPosterior Observe(ArmPosterior posterior, double utility) =>
        posterior with
        {
            Successes = posterior.Successes + utility,
            Failures = posterior.Failures + (1 - utility),
            Pulls = posterior.Pulls + 1,
        };
}

/// <summary>Beta variates from two Gamma variates (Marsaglia and Tsang's method).</summary>
public static class BetaDistribution
{
    public static double Sample(double alpha, double beta, Random random)
    {
        var x = Gamma(alpha, random);
        var y = Gamma(beta, random);
        return x / (x + y);
    }

    private static double Gamma(double shape, Random random)
    {
        if (shape < 1)
        {
            // Boost: Gamma(a) = Gamma(a + 1) · U^(1/a).
            return Gamma(shape + 1, random) * Math.Pow(1 - random.NextDouble(), 1 / shape);
        }

        var d = shape - (1.0 / 3);
        var c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = StandardNormal(random);
                v = 1 + (c * x);
            }
            while (v <= 0);

            v = v * v * v;
            var u = 1 - random.NextDouble();
            if (Math.Log(u) < (0.5 * x * x) + (d * (1 - v + Math.Log(v))))
            {
                return d * v;
            }
        }
    }

    private static double StandardNormal(Random random)
    {
        var u1 = 1 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
