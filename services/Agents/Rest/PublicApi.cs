using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Agents.Security;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Rest;

/// <summary>The public API (gRPC and, through JSON transcoding, REST) as both hosts of the agents serve it.</summary>
public static class PublicApi
{
    public static IServiceCollection AddAgentsPublicApi(this IServiceCollection services)
    {
        services.AddGrpc(options => options.EnableDetailedErrors = false)
            .AddServiceOptions<AgentsGrpcService>(options => options.Interceptors.Add<RetryAfterHeaderInterceptor>())
            .AddJsonTranscoding();
        services.AddGrpcReflection();
        return services;
    }

    /// <summary>
    /// Server-sent events for streamed completes, field-named errors for bad JSON bodies, the Agents service
    /// and the ApiKeys admin service. Call after <c>UsePlatformSecurity</c>.
    /// </summary>
    public static WebApplication MapAgentsPublicApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseMiddleware<CompleteStreamSseMiddleware>();
        app.UseRouting();
        app.UseAuthorization();
        app.UseMiddleware<RequestShapeMiddleware>(new[] { AgentsReflection.Descriptor, AdminReflection.Descriptor }.AsEnumerable());
        app.MapGrpcService<AgentsGrpcService>();
        app.MapGrpcService<ApiKeysGrpcService>();
        app.MapGrpcReflectionService();
        return app;
    }
}
