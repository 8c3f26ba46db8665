using System.Globalization;

namespace PersistentAgents.Contracts;

/// <summary>
/// An agent's cost/quality policy: λ, the utility a reply loses per unit of relative cost (its cost over
/// what the most expensive candidate would have charged for the same tokens).
/// </summary>
public static class CostPolicy
{
    public const double QualityFirst = 0;
    public const double Balanced = 0.25;
    public const double CostFirst = 0.6;

    /// <summary>The named policies and their λ.</summary>
    public static readonly IReadOnlyDictionary<string, double> Named = new Dictionary<string, double>(StringComparer.Ordinal)
    {
        ["quality-first"] = QualityFirst,
        ["balanced"] = Balanced,
        ["cost-first"] = CostFirst,
    };

    /// <summary>λ of <paramref name="policy"/>: a name from <see cref="Named"/> or a number from 0 to 10.</summary>
    public static bool TryParse(string? policy, out double lambda)
    {
        if (policy is not null && Named.TryGetValue(policy, out lambda))
        {
            return true;
        }

        if (double.TryParse(policy, NumberStyles.Float, CultureInfo.InvariantCulture, out lambda) && double.IsFinite(lambda) && lambda is >= 0 and <= 10)
        {
            return true;
        }

        lambda = 0;
        return false;
    }

    /// <summary>The error a caller sees for a policy <see cref="TryParse"/> refused.</summary>
    public static string Describe(string field, string policy) =>
        $"{field}: {ErrorText.Quote(policy)} is not a policy; use quality-first, balanced, cost-first or a number from 0 to 10";
}
