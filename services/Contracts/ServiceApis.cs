using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Contracts;

// The services' APIs as C# interfaces. In embedded mode the host binds them to the service
// implementations in-process; in distributed mode they are implemented by gRPC clients that reach the
// service through its Dapr sidecar. Business logic depends only on these.

public interface IMemoryApi
{
    Task<WorkingMemory> GetWorkingMemoryAsync(GetWorkingMemoryRequest request, CancellationToken cancellationToken);

    Task<AppendTurnReply> AppendTurnAsync(AppendTurnRequest request, CancellationToken cancellationToken);

    Task<RecallReply> RecallAsync(RecallRequest request, CancellationToken cancellationToken);

    Task<RememberReply> RememberAsync(RememberRequest request, CancellationToken cancellationToken);

    Task<AppendEpisodeReply> AppendEpisodeAsync(AppendEpisodeRequest request, CancellationToken cancellationToken);

    Task<EpisodeList> ListEpisodesAsync(ListEpisodesRequest request, CancellationToken cancellationToken);

    Task<Episode> GetEpisodeAsync(GetEpisodeRequest request, CancellationToken cancellationToken);

    Task<MemoryUsageReply> GetUsageAsync(GetMemoryUsageRequest request, CancellationToken cancellationToken);

    Task<PurgeReply> PurgeAsync(PurgeRequest request, CancellationToken cancellationToken);

    /// <summary>Embeds texts with the memory's embedder: unit-length vectors, in the order of the inputs.</summary>
    Task<EmbedReply> EmbedAsync(EmbedRequest request, CancellationToken cancellationToken);
}

/// <summary>The memory service's periodic work for one agent, apart from its API so the service does not depend on it.</summary>
public interface IMemoryMaintenanceApi
{
    Task<ConsolidateReply> ConsolidateAsync(ConsolidateRequest request, CancellationToken cancellationToken);
}

public interface ILearningApi
{
    Task<RankReply> RankAsync(RankRequest request, CancellationToken cancellationToken);

    Task<RecordOutcomeReply> RecordOutcomeAsync(InteractionCompleted request, CancellationToken cancellationToken);

    Task<RecordOutcomeReply> RecordFeedbackAsync(FeedbackRecorded request, CancellationToken cancellationToken);

    Task<ScoresReply> GetScoresAsync(GetScoresRequest request, CancellationToken cancellationToken);

    Task<SelectionHistory> GetHistoryAsync(GetHistoryRequest request, CancellationToken cancellationToken);

    Task<Experiment> PutExperimentAsync(Experiment request, CancellationToken cancellationToken);

    Task<DeleteExperimentReply> DeleteExperimentAsync(DeleteExperimentRequest request, CancellationToken cancellationToken);

    Task<ExperimentResults> GetExperimentsAsync(GetExperimentsRequest request, CancellationToken cancellationToken);
}

public interface IGatewayApi
{
    Task<GatewayReply> CompleteAsync(GatewayRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Like <see cref="CompleteAsync"/>, handing each piece of the reply (text, or a whole tool call) to
    /// <paramref name="onDelta"/> as the provider produces it; the first piece names the arm that answers.
    /// Candidates are tried in order until one has sent something; after that no fallback is possible, and a
    /// break is reported in <c>StreamError</c>.
    /// </summary>
    Task<GatewayReply> CompleteStreamingAsync(GatewayRequest request, Func<GatewayDelta, CancellationToken, ValueTask> onDelta, CancellationToken cancellationToken);

    Task<ModelCatalog> ListModelsAsync(ListModelsRequest request, CancellationToken cancellationToken);

    Task<ProviderHealthReply> GetProviderHealthAsync(ProviderHealthRequest request, CancellationToken cancellationToken);

    Task<BudgetState> GetBudgetAsync(BudgetRequest request, CancellationToken cancellationToken);
}
