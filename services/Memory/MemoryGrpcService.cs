using Grpc.Core;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Memory;

/// <summary>The memory service's gRPC face, for the other services in distributed mode.</summary>
public sealed class MemoryGrpcService(IMemoryApi memory, IMemoryMaintenanceApi maintenance) : Contracts.V1.Memory.MemoryBase
{
    public override Task<WorkingMemory> GetWorkingMemory(GetWorkingMemoryRequest request, ServerCallContext context) =>
        memory.GetWorkingMemoryAsync(request, context.CancellationToken);

    public override Task<AppendTurnReply> AppendTurn(AppendTurnRequest request, ServerCallContext context) =>
        memory.AppendTurnAsync(request, context.CancellationToken);

    public override Task<RecallReply> Recall(RecallRequest request, ServerCallContext context) =>
        memory.RecallAsync(request, context.CancellationToken);

    public override Task<RememberReply> Remember(RememberRequest request, ServerCallContext context) =>
        memory.RememberAsync(request, context.CancellationToken);

    public override Task<AppendEpisodeReply> AppendEpisode(AppendEpisodeRequest request, ServerCallContext context) =>
        memory.AppendEpisodeAsync(request, context.CancellationToken);

    public override Task<EpisodeList> ListEpisodes(ListEpisodesRequest request, ServerCallContext context) =>
        memory.ListEpisodesAsync(request, context.CancellationToken);

    public override Task<Episode> GetEpisode(GetEpisodeRequest request, ServerCallContext context) =>
        memory.GetEpisodeAsync(request, context.CancellationToken);

    public override Task<PurgeReply> Purge(PurgeRequest request, ServerCallContext context) =>
        memory.PurgeAsync(request, context.CancellationToken);

    public override Task<ConsolidateReply> Consolidate(ConsolidateRequest request, ServerCallContext context) =>
        maintenance.ConsolidateAsync(request, context.CancellationToken);

    public override Task<EmbedReply> Embed(EmbedRequest request, ServerCallContext context) =>
        memory.EmbedAsync(request, context.CancellationToken);

    public override Task<MemoryUsageReply> GetUsage(GetMemoryUsageRequest request, ServerCallContext context) =>
        memory.GetUsageAsync(request, context.CancellationToken);
}
