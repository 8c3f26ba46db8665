using PersistentAgents.Contracts;
using System.Text.RegularExpressions;
using Grpc.Core;
using MathNet.Numerics.Distributions;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning;

/// <summary>
/// A/B experiments over routing strategies: checking a definition, drawing a variant for an interaction,
/// the per-interaction metric, and the results with Welch's t-test against the control (first) variant.
/// </summary>
public static partial class Experiments
{
    public const int MaxPerAgent = 20;
    public const int MaxVariants = 8;
    public const int MinInteractionsForSignificance = 30;
    public const double SignificanceLevel = 0.05;

    public static readonly IReadOnlyList<string> Metrics = ["utility", "quality", "cost", "success"];

    /// <summary>Checks <paramref name="experiment"/> against the agent's other experiments; throws InvalidArgument or FailedPrecondition naming the field.</summary>
    public static void Validate(Experiment experiment, IEnumerable<Experiment> agentExperiments)
    {
        Require(NamePattern().IsMatch(experiment.Name), "name", $"{ErrorText.Quote(experiment.Name)} must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit");
        Require(experiment.TaskType.Length == 0 || NamePattern().IsMatch(experiment.TaskType), "taskType", $"{ErrorText.Quote(experiment.TaskType)} must be 1-64 characters of a-z, 0-9, '-' and '_'");
        Require(experiment.Metric.Length == 0 || Metrics.Contains(experiment.Metric), "metric", $"{ErrorText.Quote(experiment.Metric)} is not one of {string.Join(", ", Metrics)}");
        Require(experiment.MetricPolicy.Length == 0 || CostPolicy.TryParse(experiment.MetricPolicy, out _), "metricPolicy", CostPolicy.Describe("metricPolicy", experiment.MetricPolicy));
        Require(experiment.Variants.Count is >= 2 and <= MaxVariants, "variants", $"an experiment has 2 to {MaxVariants} variants, not {experiment.Variants.Count}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < experiment.Variants.Count; i++)
        {
            var variant = experiment.Variants[i];
            var at = $"variants[{i}]";
            Require(NamePattern().IsMatch(variant.Name), $"{at}.name", $"{ErrorText.Quote(variant.Name)} must be 1-64 characters of a-z, 0-9, '-' and '_'");
            Require(names.Add(variant.Name), $"{at}.name", $"{ErrorText.Quote(variant.Name)} is used by another variant");
            Require(double.IsFinite(variant.Weight) && variant.Weight > 0, $"{at}.weight", "must be a number above 0");
            Require(variant.Policy.Length == 0 || CostPolicy.TryParse(variant.Policy, out _), $"{at}.policy", CostPolicy.Describe($"{at}.policy", variant.Policy));
            var fixedArm = variant.FixedArm;
            Require(fixedArm is null || (fixedArm.Provider.Length > 0 && fixedArm.Model.Length > 0), $"{at}.fixedArm", "needs both provider and model");
        }

        var others = agentExperiments.Where(e => e.Name != experiment.Name).ToList();
        if (others.Count >= MaxPerAgent)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"name: the agent already has {MaxPerAgent} experiments; delete one first"));
        }

        var overlapping = others.FirstOrDefault(e => e.TaskType.Length == 0 || experiment.TaskType.Length == 0 || e.TaskType == experiment.TaskType);
        if (overlapping is not null)
        {
            var scope = overlapping.TaskType.Length == 0 ? "every task type" : $"task type '{overlapping.TaskType}'";
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"taskType: experiment '{overlapping.Name}' already covers {scope} for this agent; delete it first"));
        }
    }

    /// <summary>The experiment of this agent that covers <paramref name="taskType"/>, if any.</summary>
    public static Experiment? Covering(IEnumerable<Experiment> experiments, string tenant, string agent, string taskType) =>
        experiments.FirstOrDefault(e => e.Tenant == tenant && e.Agent == agent && (e.TaskType.Length == 0 || e.TaskType == taskType));

    /// <summary>A variant drawn in proportion to the weights.</summary>
    public static ExperimentVariant Draw(Experiment experiment, Random random)
    {
        var point = random.NextDouble() * experiment.Variants.Sum(v => v.Weight);
        foreach (var variant in experiment.Variants)
        {
            point -= variant.Weight;
            if (point < 0)
            {
                return variant;
            }
        }

        return experiment.Variants[^1];
    }

    /// <summary>The experiment's metric for one interaction; for cost, lower is better.</summary>
    public static double Metric(Experiment experiment, InteractionCompleted outcome)
    {
        var relativeCost = outcome.ReferenceCostUsd > 0 ? outcome.CostUsd / outcome.ReferenceCostUsd : 0;
        return experiment.Metric switch
        {
            "quality" => outcome.Success ? outcome.Quality : 0,
            "cost" => outcome.CostUsd,
            "success" => outcome.Success ? 1 : 0,
            _ => outcome.Success ? outcome.Quality - (LambdaOf(experiment) * relativeCost) : 0,
        };
    }

    public static ExperimentResult Results(Experiment experiment, IReadOnlyDictionary<VariantKey, VariantTally> tallies)
    {
        var result = new ExperimentResult { Experiment = experiment };
        var summaries = experiment.Variants
            .Select(v => Summary.Of(tallies.GetValueOrDefault(new VariantKey(experiment.Tenant, experiment.Agent, experiment.Name, v.Name)) ?? VariantTally.Empty))
            .ToList();
        var control = summaries[0];
        for (var i = 0; i < summaries.Count; i++)
        {
            var summary = summaries[i];
            var pValue = i == 0 ? 1 : WelchPValue(control, summary);
            result.Variants.Add(new VariantResult
            {
                Name = experiment.Variants[i].Name,
                Interactions = summary.Tally.Interactions,
                SuccessRate = summary.Rate(summary.Tally.Successes),
                MeanQuality = summary.Rate(summary.Tally.QualitySum),
                MeanCostUsd = summary.Rate(summary.Tally.CostSum),
                MetricMean = summary.Mean,
                MetricStddev = Math.Sqrt(summary.Variance),
                PValue = pValue,
                Significant = i > 0 && pValue < SignificanceLevel
                              && Math.Min(control.Tally.Interactions, summary.Tally.Interactions) >= MinInteractionsForSignificance,
            });
        }

        var lowerIsBetter = experiment.Metric == "cost";
        var best = Enumerable.Range(0, summaries.Count)
            .Where(i => summaries[i].Tally.Interactions > 0)
            .OrderBy(i => lowerIsBetter ? summaries[i].Mean : -summaries[i].Mean)
            .Cast<int?>()
            .FirstOrDefault();
        if (best is { } winner && (winner == 0 ? result.Variants.Skip(1).All(v => v.Significant) : result.Variants[winner].Significant))
        {
            result.Winner = experiment.Variants[winner].Name;
        }

        return result;
    }

    private static double LambdaOf(Experiment experiment) =>
        CostPolicy.TryParse(experiment.MetricPolicy.Length == 0 ? "balanced" : experiment.MetricPolicy, out var lambda) ? lambda : CostPolicy.Balanced;

    /// <summary>Two-sided p-value of Welch's t-test for different means.</summary>
    private static double WelchPValue(Summary a, Summary b)
    {
        if (a.Tally.Interactions < 2 || b.Tally.Interactions < 2)
        {
            return 1;
        }

        var va = a.Variance / a.Tally.Interactions;
        var vb = b.Variance / b.Tally.Interactions;
        var standardError = Math.Sqrt(va + vb);
        if (standardError < 1e-12)
        {
            return a.Mean == b.Mean ? 1 : 0;
        }

        var t = Math.Abs(a.Mean - b.Mean) / standardError;
        var degrees = ((va + vb) * (va + vb)) / ((va * va / (a.Tally.Interactions - 1)) + (vb * vb / (b.Tally.Interactions - 1)));
        return 2 * (1 - StudentT.CDF(0, 1, degrees, t));
    }

    private static void Require(bool condition, string field, string message)
    {
        if (!condition)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, message.StartsWith(field + ":", StringComparison.Ordinal) ? message : $"{field}: {message}"));
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,63}$")]
    private static partial Regex NamePattern();

    private sealed record Summary(VariantTally Tally, double Mean, double Variance)
    {
        public static Summary Of(VariantTally tally)
        {
            var n = tally.Interactions;
            var mean = n > 0 ? tally.MetricSum / n : 0;
            var variance = n > 1 ? Math.Max(0, (tally.MetricSquares - (n * mean * mean)) / (n - 1)) : 0;
            return new Summary(tally, mean, variance);
        }

        public double Rate(double sum) => Tally.Interactions > 0 ? sum / Tally.Interactions : 0;
    }
}
