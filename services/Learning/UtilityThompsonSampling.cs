using MathNet.Numerics.Distributions;

namespace PersistentAgents.Learning;

/// <summary>
/// Thompson sampling on the utility of an arm: reliability × (quality − λ · relative cost), with a Beta
/// posterior for reliability and a Normal one for the quality of a success, discounting so the bandit follows drift, and a
/// drift detector that drops an arm's old evidence when its recent rewards disagree with it. Pure functions
/// over <see cref="ArmState"/>; storage and locking are the caller's.
/// </summary>
public sealed class UtilityThompsonSampling(LearningOptions options)
{
    public string Describe(double lambda) =>
        FormattableString.Invariant($"thompson(gamma={options.Discount},lambda={lambda})");

    public string ContextOf(double complexity) => complexity >= options.ComplexityThreshold ? "complex" : "simple";

    public double Reliability(ArmState arm) => ReliabilityAlpha(arm) / (ReliabilityAlpha(arm) + ReliabilityBeta(arm));

    /// <summary>The posterior mean quality: the catalog's word, worth <see cref="LearningOptions.PriorStrength"/> replies, and what was seen.</summary>
    public double Quality(ArmState arm) =>
        ((options.PriorStrength * arm.PriorQuality) + arm.QualitySum) / (options.PriorStrength + arm.QualityCount);

    /// <summary>The posterior standard deviation of the mean quality.</summary>
    public double QualityUncertainty(ArmState arm)
    {
        var spread = options.PriorQualitySpread;
        if (arm.QualityCount >= 2)
        {
            var mean = arm.QualitySum / arm.QualityCount;
            var observedVariance = (arm.QualitySquares / arm.QualityCount) - (mean * mean);
            spread = Math.Sqrt(Math.Max(observedVariance, options.MinQualitySpread * options.MinQualitySpread));
        }

        return spread / Math.Sqrt(options.PriorStrength + arm.QualityCount);
    }

    /// <summary>The learned relative cost once the arm has been paid for, else the catalog's estimate.</summary>
    public static double RelativeCost(ArmState arm) =>
        arm.Successes >= 0.5 ? arm.CostSum / arm.Successes : arm.CatalogCost;

    /// <summary>The posterior mean utility.</summary>
    public double Score(ArmState arm, double lambda) =>
        Reliability(arm) * (Quality(arm) - (lambda * RelativeCost(arm)));

    /// <summary>One draw of the utility from the posterior.</summary>
    public double Sample(ArmState arm, double lambda, Random random)
    {
        var reliability = BetaDistribution.Sample(ReliabilityAlpha(arm), ReliabilityBeta(arm), random);
        var quality = Math.Clamp(Normal.Sample(random, Quality(arm), QualityUncertainty(arm)), 0, 1);
        return reliability * (quality - (lambda * RelativeCost(arm)));
    }

    /// <summary>Every outcome in a group ages the evidence of all its arms.</summary>
    public ArmState Decay(ArmState arm) => arm with
    {
        Successes = arm.Successes * options.Discount,
        Failures = arm.Failures * options.Discount,
        QualityCount = arm.QualityCount * options.Discount,
        QualitySum = arm.QualitySum * options.Discount,
        QualitySquares = arm.QualitySquares * options.Discount,
        CostSum = arm.CostSum * options.Discount,
        Idle = arm.Idle + 1,
    };

    /// <summary>Learns from one call of the arm; resets its evidence when the drift detector fires.</summary>
    public ArmState Observe(ArmState arm, bool success, double quality, double relativeCost)
    {
        var (reliability, expectedQuality) = (Reliability(arm), Quality(arm));
        if (success && IsDown(arm))
        {
            arm = Forgive(arm);
            (reliability, expectedQuality) = (Reliability(arm), Quality(arm));
        }

        var expectedReward = reliability * expectedQuality;
        var first = arm.RecentCount == 0;
        var smoothing = options.DriftSmoothing;
        var recentSuccess = first ? (success ? 1 : 0) : arm.RecentSuccess + (smoothing * ((success ? 1 : 0) - arm.RecentSuccess));
        var recentQuality = !success ? (first ? expectedQuality : arm.RecentQuality)
            : first ? quality : arm.RecentQuality + (smoothing * (quality - arm.RecentQuality));
        var observed = arm with
        {
            Successes = arm.Successes + (success ? 1 : 0),
            Failures = arm.Failures + (success ? 0 : 1),
            ConsecutiveFailures = success ? 0 : arm.ConsecutiveFailures + 1,
            Idle = 0,
            QualityCount = arm.QualityCount + (success ? 1 : 0),
            QualitySum = arm.QualitySum + (success ? quality : 0),
            QualitySquares = arm.QualitySquares + (success ? quality * quality : 0),
            CostSum = arm.CostSum + (success ? relativeCost : 0),
            Pulls = arm.Pulls + 1,
            RecentSuccess = recentSuccess,
            RecentQuality = recentQuality,
            RecentCount = arm.RecentCount + 1,
        };
        // The moving average of a reward with the arm's expected variance has this standard error.
        var variance = (reliability * ((expectedQuality * expectedQuality) + (options.QualityNoise * options.QualityNoise))) - (expectedReward * expectedReward);
        var standardError = Math.Sqrt(Math.Max(variance, options.DriftMinRewardSpread * options.DriftMinRewardSpread) * smoothing / (2 - smoothing));
        var drop = expectedReward - (recentSuccess * recentQuality);
        if (observed.RecentCount < options.DriftMinSamples || drop < options.DriftMinDrop || drop < options.DriftZ * standardError)
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
            QualitySquares = weight * ((recentQuality * recentQuality) + (options.QualityNoise * options.QualityNoise)),
            CostSum = successes * meanCost,
            RecentCount = 0,
            Resets = observed.Resets + 1,
        };
    }

    public bool IsDown(ArmState arm) =>
        arm.ConsecutiveFailures >= options.DownAfterFailures || Reliability(arm) < options.DownReliability;

    /// <summary>A down arm whose turn for a probe has come.</summary>
    public bool IsDueForProbe(ArmState arm) => IsDown(arm) && arm.Idle >= options.ProbeInterval;

    /// <summary>
    /// A down arm whose provider answers again is back: its outage's failures, and the recent averages that
    /// saw them, no longer say anything.
    /// </summary>
    public static ArmState Forgive(ArmState arm) => arm with { Failures = 0, ConsecutiveFailures = 0, RecentCount = 0 };

    /// <summary>An explicit quality score for a reply of this arm.</summary>
    public ArmState ObserveFeedback(ArmState arm, double score) => arm with
    {
        QualityCount = arm.QualityCount + options.FeedbackWeight,
        QualitySum = arm.QualitySum + (options.FeedbackWeight * score),
        QualitySquares = arm.QualitySquares + (options.FeedbackWeight * score * score),
    };

    private double ReliabilityAlpha(ArmState arm) => (options.PriorStrength * options.PriorReliability) + arm.Successes;

    private double ReliabilityBeta(ArmState arm) => (options.PriorStrength * (1 - options.PriorReliability)) + arm.Failures;

}
