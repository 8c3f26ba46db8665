namespace PersistentAgents.Learning;

/// <summary>
/// Thompson sampling on the utility of an arm: reliability × (quality − λ · relative cost), with a Beta
/// posterior for reliability and one for quality on success, discounting so the bandit follows drift, and a
/// drift detector that drops an arm's old evidence when its recent rewards disagree with it. Pure functions
/// over <see cref="ArmState"/>; storage and locking are the caller's.
/// </summary>
public sealed class UtilityThompsonSampling(LearningOptions options)
{
    public string Describe(double lambda) =>
        FormattableString.Invariant($"thompson(gamma={options.Discount},lambda={lambda})");

    public string ContextOf(double complexity) => complexity >= options.ComplexityThreshold ? "complex" : "simple";

    public double Reliability(ArmState arm) =>
        (1 + (options.PriorStrength * options.PriorReliability) + arm.Successes)
        / (2 + options.PriorStrength + arm.Successes + arm.Failures);

    public double Quality(ArmState arm) =>
        (1 + (options.PriorStrength * arm.PriorQuality) + arm.QualitySum)
        / (2 + options.PriorStrength + arm.QualityCount);

    /// <summary>The learned relative cost once the arm has been paid for, else the catalog's estimate.</summary>
    public static double RelativeCost(ArmState arm, double catalogRelativeCost) =>
        arm.Successes >= 0.5 ? arm.CostSum / arm.Successes : catalogRelativeCost;

    /// <summary>The posterior mean utility.</summary>
    public double Score(ArmState arm, double catalogRelativeCost, double lambda) =>
        Reliability(arm) * (Quality(arm) - (lambda * RelativeCost(arm, catalogRelativeCost)));

    /// <summary>One draw of the utility from the posterior.</summary>
    public double Sample(ArmState arm, double catalogRelativeCost, double lambda, Random random)
    {
        var reliability = BetaDistribution.Sample(
            1 + (options.PriorStrength * options.PriorReliability) + arm.Successes,
            1 + (options.PriorStrength * (1 - options.PriorReliability)) + arm.Failures,
            random);
        var quality = BetaDistribution.Sample(
            1 + (options.PriorStrength * arm.PriorQuality) + arm.QualitySum,
            1 + (options.PriorStrength * (1 - arm.PriorQuality)) + (arm.QualityCount - arm.QualitySum),
            random);
        return reliability * (quality - (lambda * RelativeCost(arm, catalogRelativeCost)));
    }

    /// <summary>Every outcome in a group ages the evidence of all its arms.</summary>
    public ArmState Decay(ArmState arm) => arm with
    {
        Successes = arm.Successes * options.Discount,
        Failures = arm.Failures * options.Discount,
        QualityCount = arm.QualityCount * options.Discount,
        QualitySum = arm.QualitySum * options.Discount,
        CostSum = arm.CostSum * options.Discount,
    };

    /// <summary>Learns from one call of the arm; resets its evidence when the drift detector fires.</summary>
    public ArmState Observe(ArmState arm, bool success, double quality, double relativeCost)
    {
        var expectedReward = Reliability(arm) * Quality(arm);
        var first = arm.RecentCount == 0;
        var smoothing = options.DriftSmoothing;
        var recentSuccess = first ? (success ? 1 : 0) : arm.RecentSuccess + (smoothing * ((success ? 1 : 0) - arm.RecentSuccess));
        var recentQuality = !success ? (first ? Quality(arm) : arm.RecentQuality)
            : first ? quality : arm.RecentQuality + (smoothing * (quality - arm.RecentQuality));
        var observed = arm with
        {
            Successes = arm.Successes + (success ? 1 : 0),
            Failures = arm.Failures + (success ? 0 : 1),
            QualityCount = arm.QualityCount + (success ? 1 : 0),
            QualitySum = arm.QualitySum + (success ? quality : 0),
            CostSum = arm.CostSum + (success ? relativeCost : 0),
            Pulls = arm.Pulls + 1,
            RecentSuccess = recentSuccess,
            RecentQuality = recentQuality,
            RecentCount = arm.RecentCount + 1,
        };
        if (observed.RecentCount < options.DriftMinSamples
            || Math.Abs((recentSuccess * recentQuality) - expectedReward) <= options.DriftThreshold)
        {
            return observed;
        }

        // Drift: keep a little evidence that agrees with the recent averages and forget the rest.
        var weight = options.DriftResetWeight;
        var meanCost = observed.Successes > 0 ? observed.CostSum / observed.Successes : 0;
        var successes = weight * recentSuccess;
        return observed with
        {
            Successes = successes,
            Failures = weight - successes,
            QualityCount = weight,
            QualitySum = weight * recentQuality,
            CostSum = successes * meanCost,
            RecentCount = 0,
            Resets = observed.Resets + 1,
        };
    }

    /// <summary>An explicit quality score for a reply of this arm.</summary>
    public ArmState ObserveFeedback(ArmState arm, double score) => arm with
    {
        QualityCount = arm.QualityCount + options.FeedbackWeight,
        QualitySum = arm.QualitySum + (options.FeedbackWeight * score),
    };
}
