using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using PersistentAgents.Agents;
using PersistentAgents.Agents.Routing;
using PersistentAgents.Agents.Embedded;
using PersistentAgents.Agents.OpenAi;
using PersistentAgents.Agents.Rest;
using PersistentAgents.Agents.Security;
using PersistentAgents.Analytics;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Embeddings;
using PersistentAgents.Gateway;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Embedded;
using PersistentAgents.Gateway.Providers;
using PersistentAgents.Learning;
using PersistentAgents.Learning.Embedded;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Embedded;
using PersistentAgents.ServiceHosting;

namespace PersistentAgents.Host;

/// <summary>
/// The embedded mode's composition root: the four services in one process, calling each other through
/// their C# interfaces, with SQLite, files and in-process adapters under one data folder.
/// </summary>
public static class EmbeddedHost
{
    public const string DefaultUrl = "http://localhost:5080";
    public const string DefaultGrpcUrl = "http://localhost:5081";

    /// <param name="overrides">Replaces registrations after the composition (benchmarks decorate services with it).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? overrides = null)
    {
        // Settings ship beside the binary, so the host behaves the same from whatever folder it is started.
        var (urls, hostArgs) = KestrelEndpoints.TakeUrls(args);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = hostArgs, ContentRootPath = AppContext.BaseDirectory });
        var dataDir = Path.GetFullPath(builder.Configuration["data-dir"] ?? "data");
        var catalogPath = builder.Configuration["catalog"] ?? Path.Combine(AppContext.BaseDirectory, "catalog.yaml");
        var catalog = ProviderCatalog.Load(catalogPath);
        Directory.CreateDirectory(dataDir);

        KestrelEndpoints.Listen(builder, urls ?? builder.Configuration[WebHostDefaults.ServerUrlsKey] ?? DefaultUrl, builder.Configuration["grpc-urls"] ?? DefaultGrpcUrl);

        var services = builder.Services;
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(Random.Shared);
        services.Configure<AgentLimits>(builder.Configuration.GetSection("Agents"));
        services.AddOptions<AgentRoutingOptions>()
            .Bind(builder.Configuration.GetSection("Routing"))
            .Validate(o => o.PolicyByAgent.Values.Append(o.DefaultPolicy).All(p => p.Length == 0 || CostPolicy.TryParse(p, out _)),
                "Routing: every policy must be quality-first, balanced, cost-first or a number from 0 to 10")
            .ValidateOnStart();
        services.Configure<MemoryOptions>(builder.Configuration.GetSection("Memory"));
        services.Configure<LearningOptions>(builder.Configuration.GetSection("Learning"));
        services.Configure<ResilienceOptions>(builder.Configuration.GetSection("Resilience"));
        services.Configure<ResponseCacheOptions>(builder.Configuration.GetSection("Cache"));
        services.Configure<BudgetOptions>(builder.Configuration.GetSection("Budgets"));

        // Gateway: providers from the catalog, API keys from the environment.
        services.AddSingleton<ISecretSource, EnvironmentSecretSource>();
        services.AddGateway(catalog);
        var gatewayDb = new SqliteDatabase(Path.Combine(dataDir, "gateway.db"), SqliteSpendStore.Schema);
        services.AddSingleton<ISpendStore>(_ => new SqliteSpendStore(gatewayDb));

        // Memory: SQLite for working and semantic memory, files for episodes.
        var memoryDb = new SqliteDatabase(Path.Combine(dataDir, "memory.db"), SqliteWorkingMemoryStore.Schema + InProcessVectorIndex.Schema);
        services.AddSingleton(sp => new SqliteWorkingMemoryStore(memoryDb, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IWorkingMemoryStore>(sp => sp.GetRequiredService<SqliteWorkingMemoryStore>());
        services.AddSingleton(sp => new InProcessVectorIndex(
            memoryDb, dataDir, Embedders.IdOf(sp.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>()), limits: sp.GetRequiredService<IOptions<MemoryOptions>>().Value, timeProvider: sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IVectorStore>(sp => sp.GetRequiredService<InProcessVectorIndex>());
        services.AddHostedService<VectorIndexMaintenance>();
        services.AddSingleton(_ => new FileEpisodeStore(dataDir));
        services.AddSingleton<IEpisodeStore>(sp => sp.GetRequiredService<FileEpisodeStore>());
        services.AddMemoryService((sp, name) => sp.GetRequiredService<ISecretSource>().GetSecret(name));
        services.AddHostedService<WorkingMemorySweeper>();

        // Learning: bandit state in SQLite, outcomes from the in-process bus.
        var learningDb = new SqliteDatabase(Path.Combine(dataDir, "learning.db"), SqliteLearningStateStore.Schema);
        services.AddSingleton<ILearningStateStore>(sp => new SqliteLearningStateStore(learningDb, sp.GetRequiredService<IOptions<LearningOptions>>().Value.HistoryPerAgent));
        // No learning-updated events in process: nothing here subscribes to them (and the bus itself calls learning).
        services.AddSingleton<ILearningApi>(sp => new LearningService(
            sp.GetRequiredService<ILearningStateStore>(), sp.GetRequiredService<IOptions<LearningOptions>>(), sp.GetRequiredService<Random>(), sp.GetRequiredService<TimeProvider>()));

        // Agents: aggregate state in SQLite, turns serialised per agent in process.
        var agentsDb = new SqliteDatabase(Path.Combine(dataDir, "agents.db"), SqliteAgentStateStore.Schema + SqliteApiKeyStore.Schema);
        services.AddSingleton<IAgentStateStore>(_ => new SqliteAgentStateStore(agentsDb));
        // API keys beside the agents; without Auth:Mode=keys the host runs keyless for local use (and says so).
        services.AddSingleton<IApiKeyStore>(_ => new SqliteApiKeyStore(agentsDb));
        services.AddPlatformSecurity(builder.Configuration, AuthModes.None);
        services.AddSingleton<AgentLoop>();
        services.AddSingleton<IAgentInvoker, InProcessAgentInvoker>();

        // Analytics: every outcome also into PostgreSQL when Analytics:ConnectionString is set.
        services.AddPostgresAnalytics(builder.Configuration);

        services.AddSingleton(sp =>
        {
            // A failing subscriber fails the publish; the agent loop then still replies, naming it in the
            // reply's degraded, since the episode, already stored, remains the record of the interaction.
            var bus = new InProcessEventBus();
            var learning = sp.GetRequiredService<ILearningApi>();
            bus.Subscribe<InteractionCompleted>(Topics.InteractionCompleted, "learning", (outcome, _, token) => learning.RecordOutcomeAsync(outcome, token));
            if (sp.GetService<IInteractionSink>() is { } analytics)
            {
                bus.Subscribe<InteractionCompleted>(Topics.InteractionCompleted, "analytics", (outcome, _, token) => analytics.WriteAsync(outcome, token));
            }

            return bus;
        });
        services.AddSingleton<IEventPublisher>(sp => sp.GetRequiredService<InProcessEventBus>());

        overrides?.Invoke(services);

        services.AddAgentsPublicApi();
        services.AddServingHealthChecks();
        services.AddPlatformTelemetry(builder.Configuration, "persistent-agents");

        var app = builder.Build();
        // Before the first request, so that no turn of an agent runs while its leftovers are removed.
        UnacknowledgedEpisodes.SweepAsync(
            app.Services.GetRequiredService<FileEpisodeStore>(), app.Services.GetRequiredService<IAgentStateStore>(),
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("PersistentAgents"), CancellationToken.None).GetAwaiter().GetResult();
        app.UsePlatformSecurity();
        app.MapDashboard();
        app.MapAgentsPublicApi();
        // Only the public API: memory, learning and gateway are called in process here and have no
        // tenant checks of their own, so exposing them would let a caller step around the agents.
        app.MapGrpcHealthChecksService();
        app.MapPrometheusMetrics();
        app.MapGroup("").RequireAuthorization(Tenancy.TenantPolicy).MapOpenAiCompatibleApi();
        app.MapGroup("").RequireAuthorization(Tenancy.AdminPolicy).MapGatewayAdminApi();

        app.Lifetime.ApplicationStarted.Register(() => LogStart(app, dataDir, catalogPath));
        return app;
    }

    private static void LogStart(WebApplication app, string dataDir, string catalogPath)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("PersistentAgents");
        var providers = app.Services.GetRequiredService<ActiveProviders>();
        logger.LogInformation("Persistent Agents (embedded mode) on {Urls}; data in {DataDir}; catalog {Catalog}",
            string.Join(", ", app.Urls), dataDir, catalogPath);
        foreach (var group in providers.Models.GroupBy(m => m.Provider.Name))
        {
            logger.LogInformation("Provider {Provider} ({Kind}): {Models}", group.Key,
                group.First().Provider.Kind.ToString().ToLowerInvariant(),
                string.Join(", ", group.Select(m => m.Definition.Name)));
        }

        PlatformSecurity.LogMode(app.Services, logger);
        var embedder = app.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var cache = app.Services.GetRequiredService<IOptions<ResponseCacheOptions>>().Value;
        logger.LogInformation("Semantic memory embeds with {Embedder}; response cache {Cache}", Embedders.IdOf(embedder),
            !cache.Enabled ? "off" : cache.Semantic ? $"exact and semantic (cosine >= {cache.SemanticThreshold}, meaning guard on)" : "exact only (Cache:Semantic off)");
        if (providers.AllSimulated)
        {
            logger.LogWarning("No API key configured{Missing}: running SIMULATED providers only; every reply says simulated: true",
                providers.ProvidersWithoutKey.Count > 0 ? $" (missing: {string.Join(", ", providers.ProvidersWithoutKey)})" : "");
        }
    }
}
