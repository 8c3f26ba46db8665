using System.Security.Claims;

namespace PersistentAgents.Contracts;

/// <summary>
/// Tenants namespace agents, memories, cache entries, stats and episodes. An API key names its tenant; a
/// host running without keys (embedded, local use) puts every caller in <see cref="DefaultTenant"/>.
/// </summary>
public static class Tenancy
{
    public const string DefaultTenant = "default";

    /// <summary>The tenant a message names, or <see cref="DefaultTenant"/> when it names none.</summary>
    public static string OrDefault(string? tenant) => string.IsNullOrEmpty(tenant) ? DefaultTenant : tenant;

    /// <summary>The caller's tenant from its authentication, or null when it presented no valid key.</summary>
    public static string? Of(ClaimsPrincipal? user) => user?.FindFirst(TenantClaim)?.Value;

    /// <summary>The claim carrying the caller's tenant, set by the API-key authentication.</summary>
    public const string TenantClaim = "persistent_agents/tenant";

    /// <summary>The claim carrying the caller's scope: <see cref="UserScope"/> or <see cref="AdminScope"/>.</summary>
    public const string ScopeClaim = "persistent_agents/scope";

    /// <summary>The claim carrying the id of the key the caller presented (rate limits are per key).</summary>
    public const string KeyIdClaim = "persistent_agents/key_id";

    public const string UserScope = "user";

    /// <summary>May also manage keys and providers (the <c>/admin</c> routes).</summary>
    public const string AdminScope = "admin";

    /// <summary>Authorization policy of the public API: any valid key.</summary>
    public const string TenantPolicy = "tenant";

    /// <summary>Authorization policy of the admin routes: a key with the admin scope.</summary>
    public const string AdminPolicy = "admin";
}
