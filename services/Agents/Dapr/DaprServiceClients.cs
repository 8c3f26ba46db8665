using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Dapr;

/// <summary>The memory service's API over gRPC through Dapr service invocation.</summary>
public sealed class MemoryApiClient(DaprServiceInvocation dapr) : IMemoryApi
{
    private readonly Contracts.V1.Memory.MemoryClient _client = new(dapr.Channel);

    private Grpc.Core.CallOptions To(CancellationToken token) => dapr.To(DaprComponents.Apps.Memory, token);

    public Task<WorkingMemory> GetWorkingMemoryAsync(GetWorkingMemoryRequest request, CancellationToken cancellationToken) => _client.GetWorkingMemoryAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<AppendTurnReply> AppendTurnAsync(AppendTurnRequest request, CancellationToken cancellationToken) => _client.AppendTurnAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<RecallReply> RecallAsync(RecallRequest request, CancellationToken cancellationToken) => _client.RecallAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<RememberReply> RememberAsync(RememberRequest request, CancellationToken cancellationToken) => _client.RememberAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<AppendEpisodeReply> AppendEpisodeAsync(AppendEpisodeRequest request, CancellationToken cancellationToken) => _client.AppendEpisodeAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<EpisodeList> ListEpisodesAsync(ListEpisodesRequest request, CancellationToken cancellationToken) => _client.ListEpisodesAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<Episode> GetEpisodeAsync(GetEpisodeRequest request, CancellationToken cancellationToken) => _client.GetEpisodeAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<MemoryUsageReply> GetUsageAsync(GetMemoryUsageRequest request, CancellationToken cancellationToken) => _client.GetUsageAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<PurgeReply> PurgeAsync(PurgeRequest request, CancellationToken cancellationToken) => _client.PurgeAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<EmbedReply> EmbedAsync(EmbedRequest request, CancellationToken cancellationToken) => _client.EmbedAsync(request, To(cancellationToken)).ResponseAsync;
}

/// <summary>The memory service's periodic work for one agent over gRPC through Dapr service invocation.</summary>
public sealed class MemoryMaintenanceClient(DaprServiceInvocation dapr) : IMemoryMaintenanceApi
{
    private readonly Contracts.V1.Memory.MemoryClient _client = new(dapr.Channel);

    public Task<ConsolidateReply> ConsolidateAsync(ConsolidateRequest request, CancellationToken cancellationToken) =>
        _client.ConsolidateAsync(request, dapr.To(DaprComponents.Apps.Memory, cancellationToken)).ResponseAsync;
}

/// <summary>The learning service's API over gRPC through Dapr service invocation.</summary>
public sealed class LearningApiClient(DaprServiceInvocation dapr) : ILearningApi
{
    private readonly Contracts.V1.Learning.LearningClient _client = new(dapr.Channel);

    private Grpc.Core.CallOptions To(CancellationToken token) => dapr.To(DaprComponents.Apps.Learning, token);

    public Task<RankReply> RankAsync(RankRequest request, CancellationToken cancellationToken) => _client.RankAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<RecordOutcomeReply> RecordOutcomeAsync(InteractionCompleted request, CancellationToken cancellationToken) => _client.RecordOutcomeAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<RecordOutcomeReply> RecordFeedbackAsync(FeedbackRecorded request, CancellationToken cancellationToken) => _client.RecordFeedbackAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<ScoresReply> GetScoresAsync(GetScoresRequest request, CancellationToken cancellationToken) => _client.GetScoresAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<SelectionHistory> GetHistoryAsync(GetHistoryRequest request, CancellationToken cancellationToken) => _client.GetHistoryAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<Experiment> PutExperimentAsync(Experiment request, CancellationToken cancellationToken) => _client.PutExperimentAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<DeleteExperimentReply> DeleteExperimentAsync(DeleteExperimentRequest request, CancellationToken cancellationToken) => _client.DeleteExperimentAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<ExperimentResults> GetExperimentsAsync(GetExperimentsRequest request, CancellationToken cancellationToken) => _client.GetExperimentsAsync(request, To(cancellationToken)).ResponseAsync;
}

/// <summary>The gateway's API over gRPC through Dapr service invocation.</summary>
public sealed class GatewayApiClient(DaprServiceInvocation dapr) : IGatewayApi
{
    private readonly Contracts.V1.Gateway.GatewayClient _client = new(dapr.Channel);

    private Grpc.Core.CallOptions To(CancellationToken token) => dapr.To(DaprComponents.Apps.Gateway, token);

    public Task<GatewayReply> CompleteAsync(GatewayRequest request, CancellationToken cancellationToken) => _client.CompleteAsync(request, To(cancellationToken)).ResponseAsync;

    /// <summary>
    /// The gateway's CompleteStream, which the sidecars proxy as it is written: each delta goes to
    /// <paramref name="onDelta"/> as it arrives, and the call's end is the final reply. A stream may last
    /// longer than a call's deadline, so the deadline bounds the wait for each event instead.
    /// </summary>
    public async Task<GatewayReply> CompleteStreamingAsync(GatewayRequest request, Func<GatewayDelta, CancellationToken, ValueTask> onDelta, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onDelta);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        idle.CancelAfter(dapr.Timeout);
        using var call = _client.CompleteStream(request, dapr.ToStream(DaprComponents.Apps.Gateway, idle.Token));
        try
        {
            while (await call.ResponseStream.MoveNext(idle.Token))
            {
                switch (call.ResponseStream.Current)
                {
                    case { EventCase: GatewayStreamEvent.EventOneofCase.Final, Final: var reply }:
                        return reply;
                    case { EventCase: GatewayStreamEvent.EventOneofCase.Delta, Delta: var delta }:
                        await onDelta(delta, cancellationToken);
                        break;
                }

                idle.CancelAfter(dapr.Timeout);
            }
        }
        catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Cancelled && idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.DeadlineExceeded,
                $"the gateway's stream sent nothing for {dapr.Timeout.TotalSeconds:0.#} s (Agents:ServiceCallTimeout)"));
        }

        throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.Internal, "the gateway's stream ended without its final reply"));
    }

    public Task<ModelCatalog> ListModelsAsync(ListModelsRequest request, CancellationToken cancellationToken) => _client.ListModelsAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<ProviderHealthReply> GetProviderHealthAsync(ProviderHealthRequest request, CancellationToken cancellationToken) => _client.GetProviderHealthAsync(request, To(cancellationToken)).ResponseAsync;

    public Task<BudgetState> GetBudgetAsync(BudgetRequest request, CancellationToken cancellationToken) => _client.GetBudgetAsync(request, To(cancellationToken)).ResponseAsync;
}
