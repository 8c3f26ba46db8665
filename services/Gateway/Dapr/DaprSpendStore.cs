using System.Globalization;
using System.Text;
using Dapr.Client;
using PersistentAgents.Contracts;

namespace PersistentAgents.Gateway.Dapr;

/// <summary>
/// Each agent's spend per UTC day on the <c>gateway-state</c> store, key <c>spend/{tenant}/{agent}/{yyyy-MM-dd}</c>,
/// so budgets hold across gateway replicas and restarts. Additions are read-modify-writes under the ETag
/// they read (first-write), retried when another replica added in between. A day's key expires after a
/// week: budgets are daily.
/// </summary>
public sealed class DaprSpendStore(DaprClient dapr, string storeName = DaprComponents.GatewayState) : ISpendStore
{
    private const int MaxAttempts = 16;
    private static readonly IReadOnlyDictionary<string, string> WeekTtl = new Dictionary<string, string> { ["ttlInSeconds"] = "604800" };
    private static readonly StateOptions FirstWrite = new() { Concurrency = ConcurrencyMode.FirstWrite };

    public static string KeyOf(string tenant, string agent, DateOnly day) =>
        $"spend/{Uri.EscapeDataString(tenant)}/{Uri.EscapeDataString(agent)}/{day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}";

    public async Task<double> SpentOnAsync(string tenant, string agent, DateOnly day, CancellationToken cancellationToken) =>
        (await ReadAsync(KeyOf(tenant, agent, day), cancellationToken)).Usd;

    public async Task AddAsync(string tenant, string agent, DateOnly day, double usd, CancellationToken cancellationToken)
    {
        var key = KeyOf(tenant, agent, day);
        for (var attempt = 1; ; attempt++)
        {
            var (spent, etag) = await ReadAsync(key, cancellationToken);
            var value = Encoding.UTF8.GetBytes((spent + usd).ToString("R", CultureInfo.InvariantCulture));
            if (await dapr.TrySaveByteStateAsync(storeName, key, value, etag, FirstWrite, WeekTtl, cancellationToken))
            {
                return;
            }

            if (attempt == MaxAttempts)
            {
                throw new InvalidOperationException($"spend of {key} kept changing under {MaxAttempts} attempts to add {usd} USD");
            }
        }
    }

    private async Task<(double Usd, string Etag)> ReadAsync(string key, CancellationToken cancellationToken)
    {
        var (value, etag) = await dapr.GetByteStateAndETagAsync(storeName, key, cancellationToken: cancellationToken);
        var usd = value.Length == 0 ? 0 : double.Parse(Encoding.UTF8.GetString(value.Span), CultureInfo.InvariantCulture);
        return (usd, etag ?? "");
    }
}
