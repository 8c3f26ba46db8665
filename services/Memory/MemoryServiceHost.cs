using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Contracts;
using PersistentAgents.Memory.Dapr;
using PersistentAgents.ServiceHosting;

namespace PersistentAgents.Memory;

/// <summary>
/// The memory service on its own (distributed mode): its gRPC API for the agents service, every tier on
/// its Dapr component (working memory on a state store, semantic memory on the PostgreSQL binding,
/// episodes on a blob binding), reached through the sidecar.
/// </summary>
public static class MemoryServiceHost
{
    /// <param name="overrides">Replaces registrations after the composition (tests point the Dapr client at a double).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? overrides = null)
    {
        var builder = GrpcServiceHost.CreateBuilder(args, DaprComponents.AppPorts.Memory, DaprComponents.Apps.Memory);
        var services = builder.Services;
        services.Configure<MemoryOptions>(builder.Configuration.GetSection("Memory"));
        services.AddDaprMemoryStores(EpisodeBindingOf(builder.Configuration["Memory:EpisodeBinding"]));
        // The embeddings key, when an endpoint is configured, comes from the service's environment (a
        // Kubernetes secret mounted as a variable, or the shell of `dapr run`).
        services.AddMemoryService((_, name) => Environment.GetEnvironmentVariable(name));
        overrides?.Invoke(services);

        var app = builder.Build();
        app.MapGrpcService<MemoryGrpcService>().RequireDaprAppToken(app.Configuration);
        app.MapServiceDefaults();
        return app;
    }

    /// <summary>Which blob binding <c>agent-episodic-memory</c> is: <c>localstorage</c> (self-hosted default), <c>s3</c> or <c>azureblob</c>.</summary>
    public static BlobFlavour EpisodeBindingOf(string? setting) => setting?.ToLowerInvariant() switch
    {
        null or "" or "localstorage" => BlobFlavour.LocalStorage,
        "s3" => BlobFlavour.S3,
        "azureblob" => BlobFlavour.AzureBlob,
        _ => throw new InvalidOperationException($"Memory:EpisodeBinding: '{setting}' is not one of localstorage, s3, azureblob"),
    };
}
