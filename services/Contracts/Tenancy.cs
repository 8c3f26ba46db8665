namespace PersistentAgents.Contracts;

/// <summary>Tenants namespace agents. Until API keys name a tenant, every caller is in this one.</summary>
public static class Tenancy
{
    public const string DefaultTenant = "default";
}
