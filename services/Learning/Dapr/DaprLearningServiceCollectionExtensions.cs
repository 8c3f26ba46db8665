using Dapr.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace PersistentAgents.Learning.Dapr;

public static class DaprLearningServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Dapr adapter of the learning service's state port: <see cref="DaprLearningStateStore"/>
    /// on the <c>learning-state</c> state store, keeping <see cref="LearningOptions.HistoryPerAgent"/>
    /// selections per agent. A <see cref="DaprClient"/> already registered (e.g. by Dapr.AspNetCore's
    /// <c>AddDaprClient</c>) is used; otherwise one is built from the standard environment
    /// (<c>DAPR_GRPC_ENDPOINT</c>, <c>DAPR_API_TOKEN</c> ...).
    /// </summary>
    public static IServiceCollection AddDaprLearningState(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions();
        services.TryAddSingleton(_ => new DaprClientBuilder().Build());
        services.AddSingleton<ILearningStateStore>(sp => new DaprLearningStateStore(
            sp.GetRequiredService<DaprClient>(), sp.GetRequiredService<IOptions<LearningOptions>>().Value.HistoryPerAgent));
        return services;
    }
}
