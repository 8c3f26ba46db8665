using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Memory;

/// <summary>The four memory tiers of every agent behind one API.</summary>
public sealed class MemoryService(
    IWorkingMemoryStore workingMemory,
    IVectorStore vectors,
    IEpisodeStore episodes,
    IEmbeddingGenerator<string, Embedding<float>> embedder,
    IOptions<MemoryOptions> options,
    TimeProvider timeProvider) : IMemoryApi
{
    private readonly MemoryOptions _options = options.Value;

    public async Task<WorkingMemory> GetWorkingMemoryAsync(GetWorkingMemoryRequest request, CancellationToken cancellationToken)
    {
        var turns = await workingMemory.GetRecentAsync(ScopeOf(request.Agent), request.SessionId, Math.Max(1, request.MaxTurns), cancellationToken);
        var reply = new WorkingMemory();
        reply.Turns.AddRange(turns.Select(t => new Turn
        {
            Prompt = t.Prompt,
            Reply = t.Reply,
            InteractionId = t.InteractionId,
            At = Timestamp.FromDateTimeOffset(t.At),
        }));
        return reply;
    }

    public async Task<AppendTurnReply> AppendTurnAsync(AppendTurnRequest request, CancellationToken cancellationToken)
    {
        var ttl = request.TtlSeconds > 0 ? TimeSpan.FromSeconds(request.TtlSeconds) : _options.WorkingMemoryTtl;
        var turn = new WorkingTurn(request.Turn.Prompt, request.Turn.Reply, request.Turn.InteractionId, request.Turn.At?.ToDateTimeOffset() ?? timeProvider.GetUtcNow());
        await workingMemory.AppendAsync(ScopeOf(request.Agent), request.SessionId, turn, ttl, _options.MaxTurnsPerSession, cancellationToken);
        return new AppendTurnReply();
    }

    public async Task<RecallReply> RecallAsync(RecallRequest request, CancellationToken cancellationToken)
    {
        var query = await embedder.GenerateVectorAsync(request.Query, cancellationToken: cancellationToken);
        var matches = await vectors.SearchAsync(ScopeOf(request.Agent), query, Math.Max(1, request.TopK), request.MinSimilarity, cancellationToken);
        var reply = new RecallReply();
        reply.Memories.AddRange(matches.Select(m => new RecalledMemory
        {
            Id = m.Record.Id,
            Text = m.Record.Text,
            Similarity = m.Similarity,
            TaskType = m.Record.TaskType,
        }));
        return reply;
    }

    public async Task<RememberReply> RememberAsync(RememberRequest request, CancellationToken cancellationToken)
    {
        var scope = ScopeOf(request.Agent);
        var vector = await embedder.GenerateVectorAsync(request.Text, cancellationToken: cancellationToken);

        // A near-duplicate of something already remembered refreshes that memory instead of crowding
        // recall with copies of the same fact.
        var nearest = await vectors.SearchAsync(scope, vector, 1, _options.DuplicateSimilarity, cancellationToken);
        var id = nearest.Count > 0 ? nearest[0].Record.Id : request.Id;
        await vectors.UpsertAsync(
            new VectorRecord(id, scope, vector, request.Text, request.TaskType, request.Success, request.CostUsd, timeProvider.GetUtcNow()),
            cancellationToken);
        return new RememberReply { Id = id };
    }

    public async Task<AppendEpisodeReply> AppendEpisodeAsync(AppendEpisodeRequest request, CancellationToken cancellationToken)
    {
        var at = request.At?.ToDateTimeOffset() ?? timeProvider.GetUtcNow();
        var location = await episodes.AppendAsync(ScopeOf(request.Agent), request.InteractionId, at, request.Json, cancellationToken);
        return new AppendEpisodeReply { Location = location };
    }

    public async Task<MemoryUsageReply> GetUsageAsync(GetMemoryUsageRequest request, CancellationToken cancellationToken)
    {
        var scope = ScopeOf(request.Agent);
        return new MemoryUsageReply
        {
            WorkingTurns = await workingMemory.CountAsync(scope, cancellationToken),
            SemanticMemories = await vectors.CountAsync(scope, cancellationToken),
            Episodes = await episodes.CountAsync(scope, cancellationToken),
            Embedder = embedder.GetService<EmbeddingGeneratorMetadata>() is { } metadata
                ? $"{metadata.DefaultModelId} ({metadata.DefaultModelDimensions} dims, {metadata.ProviderName})"
                : "unknown",
        };
    }

    private static AgentScope ScopeOf(AgentRef agent) =>
        new(string.IsNullOrEmpty(agent.Tenant) ? Tenancy.DefaultTenant : agent.Tenant, agent.Agent);
}
