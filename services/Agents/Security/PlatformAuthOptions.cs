namespace PersistentAgents.Agents.Security;

/// <summary>How callers are authenticated (configuration section <c>Auth</c>).</summary>
public sealed class PlatformAuthOptions
{
    /// <summary>
    /// <c>keys</c>: every call but health needs an API key. <c>none</c>: no keys, every caller is the
    /// default tenant with the admin scope — for one person on their own machine; the host says so at start.
    /// </summary>
    public string Mode { get; set; } = AuthModes.Keys;

    /// <summary>
    /// A key with the admin scope given by configuration (e.g. <c>Auth__AdminKey</c> from a secret), so that
    /// the first keys can be created. Compared by hash; never logged.
    /// </summary>
    public string? AdminKey { get; set; }

    /// <summary>The tenant the configured admin key acts in.</summary>
    public string AdminTenant { get; set; } = Contracts.Tenancy.DefaultTenant;

    /// <summary>Requests per minute per key unless the key says otherwise; the burst is the same number.</summary>
    public int RequestsPerMinute { get; set; } = 600;

    public bool KeysRequired => !string.Equals(Mode, AuthModes.None, StringComparison.OrdinalIgnoreCase);
}

public static class AuthModes
{
    public const string Keys = "keys";
    public const string None = "none";
}
