using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace PersistentAgents.Analytics;

public static class AnalyticsServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="PostgresAnalyticsSink"/> as the <see cref="IInteractionSink"/> when
    /// <c>Analytics:ConnectionString</c> is set.
    /// </summary>
    /// <returns>Whether analytics is on.</returns>
    public static bool AddPostgresAnalytics(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(AnalyticsOptions.Section).Get<AnalyticsOptions>() ?? new AnalyticsOptions();
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return false;
        }

        services.AddSingleton<IInteractionSink>(_ => new PostgresAnalyticsSink(options.ConnectionString));
        return true;
    }
}
