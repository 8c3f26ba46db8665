namespace PersistentAgents.Analytics;

/// <summary>The <c>Analytics</c> settings section.</summary>
public sealed class AnalyticsOptions
{
    public const string Section = "Analytics";

    /// <summary>An Npgsql connection string; empty leaves analytics off.</summary>
    public string ConnectionString { get; set; } = "";
}
