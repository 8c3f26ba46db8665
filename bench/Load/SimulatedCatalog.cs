using System.Globalization;
using System.Text;

namespace PersistentAgents.Bench.Load;

/// <summary>
/// The catalog of the load and soak benchmarks: three simulated providers (frontier, balanced, budget) that
/// answer at once, each failing the given share of calls.
/// </summary>
internal static class SimulatedCatalog
{
    public static string Yaml(double providerFailureRate)
    {
        var rate = providerFailureRate.ToString(CultureInfo.InvariantCulture);
        var providers = new StringBuilder("simulated: always\nproviders:\n");
        foreach (var (provider, model, quality, price) in new[] { ("sim-frontier", "frontier-large", 0.9, 3.0), ("sim-balanced", "balanced-medium", 0.8, 0.5), ("sim-budget", "budget-small", 0.6, 0.05) })
        {
            providers.Append(CultureInfo.InvariantCulture, $"""
                  - name: {provider}
                    kind: simulated
                    timeoutSeconds: 10
                    models:
                      - name: {model}
                        inputPricePerMTok: {price}
                        outputPricePerMTok: {price * 4}
                        contextWindow: 128000
                        quality: {quality}
                        simulation: {"{"} quality: {quality}, failureRate: {rate}, latencyMs: 0 {"}"}

                """);
        }

        return providers.ToString();
    }
}
