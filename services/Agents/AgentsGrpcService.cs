using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using PersistentAgents.Agents.Routing;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents;

/// <summary>
/// The public API, over gRPC and (through JSON transcoding of the same methods) REST.
/// </summary>
[Microsoft.AspNetCore.Authorization.Authorize(Policy = Tenancy.TenantPolicy)]
public sealed class AgentsGrpcService(
    IAgentInvoker invoker,
    IMemoryApi memory,
    ILearningApi learning,
    IGatewayApi gateway,
    IOptions<AgentLimits> limits,
    IOptions<AgentRoutingOptions> routing) : Contracts.V1.Agents.AgentsBase
{
    public override Task<CompleteReply> Complete(CompleteRequest request, ServerCallContext context)
    {
        var valid = CompleteRequestValidator.Validate(request, limits.Value);
        return invoker.CompleteAsync(AgentOf(request.Agent, context), valid, onDelta: null, context.CancellationToken);
    }

    public override async Task CompleteStream(CompleteRequest request, IServerStreamWriter<CompleteEvent> responseStream, ServerCallContext context)
    {
        var valid = CompleteRequestValidator.Validate(request, limits.Value);
        var reply = await invoker.CompleteAsync(
            AgentOf(request.Agent, context), valid,
            async (delta, token) => await responseStream.WriteAsync(new CompleteEvent { Delta = delta }, token),
            context.CancellationToken);
        await responseStream.WriteAsync(new CompleteEvent { Final = reply }, context.CancellationToken);
    }

    public override async Task<AgentStats> GetStats(GetStatsRequest request, ServerCallContext context)
    {
        var agent = AgentOf(request.Agent, context);
        var aggregate = await LoadExistingAsync(agent, context.CancellationToken);
        var scores = await learning.GetScoresAsync(
            new GetScoresRequest { Tenant = agent.Tenant, Agent = agent.Name, Policy = routing.Value.PolicyFor(agent.Name) }, context.CancellationToken);
        var usage = await memory.GetUsageAsync(new GetMemoryUsageRequest { Agent = RefOf(agent) }, context.CancellationToken);
        var stats = new AgentStats
        {
            Agent = agent.Name,
            TotalInteractions = aggregate.Interactions,
            Successes = aggregate.Successes,
            Failures = aggregate.Failures,
            TotalCostUsd = aggregate.CostUsd,
            TokensIn = aggregate.TokensIn,
            TokensOut = aggregate.TokensOut,
            AverageLatencyMs = aggregate.Interactions == 0 ? 0 : aggregate.TotalLatencyMs / aggregate.Interactions,
            LastActivity = aggregate.LastActivity is { } last ? Timestamp.FromDateTimeOffset(last) : null,
            Memory = new MemoryUsage
            {
                WorkingTurns = usage.WorkingTurns,
                WorkingBytes = usage.WorkingBytes,
                SemanticMemories = usage.SemanticMemories,
                SemanticBytes = usage.SemanticBytes,
                Episodes = usage.Episodes,
                EpisodeBytes = usage.EpisodeBytes,
                Embedder = usage.Embedder,
            },
        };
        foreach (var (taskType, perTask) in aggregate.TaskTypes.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var learned = scores.Scores.Where(s => s.TaskType == taskType).ToList();
            var preferred = learned.MaxBy(s => s.Score)?.Arm;
            var taskStats = new TaskTypeStats
            {
                TaskType = taskType,
                PreferredProvider = preferred?.Provider ?? "",
                PreferredModel = preferred?.Model ?? "",
                Interactions = perTask.Interactions,
                Successes = perTask.Successes,
                Failures = perTask.Failures,
                CostUsd = perTask.CostUsd,
            };
            taskStats.Arms.AddRange(perTask.Arms.Values
                .OrderByDescending(a => a.Calls)
                .Select(a => new ArmStats
                {
                    Provider = a.Provider,
                    Model = a.Model,
                    Interactions = a.Calls,
                    SuccessRate = a.Calls == 0 ? 0 : (double)a.Successes / a.Calls,
                    MeanQuality = a.Successes == 0 ? 0 : a.QualitySum / a.Successes,
                    CostUsd = a.CostUsd,
                    LearnedScore = learned.Where(s => s.Arm.Provider == a.Provider && s.Arm.Model == a.Model).MaxBy(s => s.Pulls)?.Score ?? 0,
                    TrafficShare = scores.Shares
                        .FirstOrDefault(s => s.TaskType == taskType && s.Arm.Provider == a.Provider && s.Arm.Model == a.Model)?.Share ?? 0,
                }));
            taskStats.Learned.AddRange(learned);
            stats.TaskTypes.Add(taskStats);
        }

        return stats;
    }

    public override async Task<AgentHealth> GetHealth(GetHealthRequest request, ServerCallContext context)
    {
        var agent = AgentOf(request.Agent, context);
        var aggregate = await LoadExistingAsync(agent, context.CancellationToken);
        var providers = await gateway.GetProviderHealthAsync(new ProviderHealthRequest(), context.CancellationToken);
        var open = providers.Providers.Count(p => p.Circuit == "open");
        var health = new AgentHealth
        {
            Agent = agent.Name,
            Status = open == 0 ? "ok" : open < providers.Providers.Count ? "degraded" : "unavailable",
            LastActivity = aggregate.LastActivity is { } last ? Timestamp.FromDateTimeOffset(last) : null,
        };
        health.Providers.AddRange(providers.Providers.Select(p => new ProviderCircuit { Provider = p.Provider, State = p.Circuit, Simulated = p.Simulated }));
        return health;
    }

    public override async Task<WorkingMemory> GetWorkingMemory(AgentWorkingMemoryRequest request, ServerCallContext context)
    {
        var agent = await ExistingAgentAsync(request.Agent, context);
        var sessionId = CompleteRequestValidator.ValidSessionId(request.SessionId);
        return await memory.GetWorkingMemoryAsync(
            new GetWorkingMemoryRequest { Agent = RefOf(agent), SessionId = sessionId, MaxTurns = limits.Value.MaxWorkingMemoryTurnsShown },
            context.CancellationToken);
    }

    public override async Task<RecallReply> RecallMemory(AgentRecallRequest request, ServerCallContext context)
    {
        var agent = await ExistingAgentAsync(request.Agent, context);
        var recall = CompleteRequestValidator.ValidRecall(request, limits.Value);
        recall.Agent = RefOf(agent);
        var reply = await memory.RecallAsync(recall, context.CancellationToken);
        // The query's vector is for the turn's own gateway call, not for callers of the public API.
        reply.QueryEmbedding.Clear();
        return reply;
    }

    public override async Task<EpisodeList> ListEpisodes(AgentEpisodesRequest request, ServerCallContext context)
    {
        var agent = await ExistingAgentAsync(request.Agent, context);
        return await memory.ListEpisodesAsync(
            new ListEpisodesRequest { Agent = RefOf(agent), From = request.From, To = request.To, Limit = CompleteRequestValidator.ValidEpisodesLimit(request.Limit, limits.Value) },
            context.CancellationToken);
    }

    public override async Task<Episode> GetEpisode(AgentEpisodeRequest request, ServerCallContext context)
    {
        var agent = await ExistingAgentAsync(request.Agent, context);
        return await memory.GetEpisodeAsync(
            new GetEpisodeRequest { Agent = RefOf(agent), InteractionId = request.InteractionId },
            context.CancellationToken);
    }

    public override async Task<PurgeReply> PurgeMemory(PurgeMemoryRequest request, ServerCallContext context) =>
        await invoker.PurgeAsync(await ExistingAgentAsync(request.Agent, context), context.CancellationToken);

    /// <summary>
    /// Explicit feedback: the episode says which arm served the interaction, for which task type and
    /// prompt complexity; the learning service takes the first score per interaction and ignores the rest.
    /// </summary>
    public override async Task<FeedbackReply> Feedback(FeedbackRequest request, ServerCallContext context)
    {
        var agent = AgentOf(request.Agent, context);
        if (!double.IsFinite(request.Score) || request.Score is < 0 or > 1)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "score: must be a number from 0 to 1"));
        }

        var episode = await memory.GetEpisodeAsync(
            new GetEpisodeRequest { Agent = RefOf(agent), InteractionId = request.InteractionId }, context.CancellationToken);
        var recorded = System.Text.Json.Nodes.JsonNode.Parse(episode.Json)!;
        var reply = recorded["reply"];
        var provider = (string?)reply?["provider"] ?? "";
        if ((bool?)recorded["success"] != true || provider.Length == 0)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"interactionId: interaction {request.InteractionId} failed; there is no reply to rate"));
        }

        var arm = new ArmRef { Provider = provider, Model = (string?)reply?["model"] ?? "" };
        var applied = await learning.RecordFeedbackAsync(
            new FeedbackRecorded
            {
                InteractionId = request.InteractionId,
                Tenant = agent.Tenant,
                Agent = agent.Name,
                TaskType = (string?)recorded["taskType"] ?? CompleteRequestValidator.DefaultTaskType,
                Context = (string?)reply?["routeContext"] ?? "",
                Arm = arm,
                Score = request.Score,
            },
            context.CancellationToken);
        return new FeedbackReply { Recorded = applied.Recorded, Provider = arm.Provider, Model = arm.Model };
    }

    public override async Task<SelectionHistory> GetLearningHistory(LearningHistoryRequest request, ServerCallContext context)
    {
        var agent = await ExistingAgentAsync(request.Agent, context);
        if (request.TaskType.Length > 0)
        {
            CompleteRequestValidator.ValidateName("taskType", request.TaskType);
        }

        return await learning.GetHistoryAsync(
            new GetHistoryRequest { Tenant = agent.Tenant, Agent = agent.Name, TaskType = request.TaskType, Limit = request.Limit },
            context.CancellationToken);
    }

    // Experiments may be set up before an agent's first interaction, so listing them needs no interaction.
    public override async Task<ExperimentResults> GetExperiments(AgentExperimentsRequest request, ServerCallContext context)
    {
        var agent = AgentOf(request.Agent, context);
        return await learning.GetExperimentsAsync(new GetExperimentsRequest { Tenant = agent.Tenant, Agent = agent.Name }, context.CancellationToken);
    }

    public override async Task<Experiment> PutExperiment(PutExperimentRequest request, ServerCallContext context)
    {
        var agent = AgentOf(request.Agent, context);
        var catalog = await gateway.ListModelsAsync(new ListModelsRequest(), context.CancellationToken);
        for (var i = 0; i < request.Variants.Count; i++)
        {
            if (request.Variants[i].FixedArm is { Provider.Length: > 0 } fixedArm && !catalog.Models.Any(m => m.Arm.Equals(fixedArm)))
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"variants[{i}].fixedArm: {fixedArm.Provider}/{fixedArm.Model} is not in the model catalog"));
            }
        }

        return await learning.PutExperimentAsync(
            new Experiment
            {
                Tenant = agent.Tenant,
                Agent = agent.Name,
                Name = request.Name,
                TaskType = request.TaskType,
                Variants = { request.Variants },
                Metric = request.Metric,
                MetricPolicy = request.MetricPolicy,
            },
            context.CancellationToken);
    }

    public override async Task<DeleteExperimentReply> DeleteExperiment(AgentExperimentRequest request, ServerCallContext context)
    {
        var agent = AgentOf(request.Agent, context);
        var deleted = await learning.DeleteExperimentAsync(
            new DeleteExperimentRequest { Tenant = agent.Tenant, Agent = agent.Name, Name = request.Name }, context.CancellationToken);
        return deleted.Deleted
            ? deleted
            : throw new RpcException(new Status(StatusCode.NotFound, $"name: agent '{agent.Name}' has no experiment {ErrorText.Quote(request.Name)}"));
    }

    private static AgentRef RefOf(AgentId agent) => new() { Tenant = agent.Tenant, Agent = agent.Name };

    /// <summary>The named agent in the caller's tenant: a name never reaches another tenant's agent.</summary>
    private static AgentId AgentOf(string name, ServerCallContext context)
    {
        CompleteRequestValidator.ValidateAgentName(name);
        var tenant = Tenancy.Of(context.GetHttpContext().User)
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "authorization: an API key is required"));
        return new AgentId(tenant, name);
    }

    /// <summary>
    /// The agent, when it has stats or memories in the caller's tenant; otherwise NOT_FOUND, so that a read
    /// of another tenant's agent looks exactly like a read of a name nobody used.
    /// </summary>
    private async Task<AgentId> ExistingAgentAsync(string name, ServerCallContext context)
    {
        var agent = AgentOf(name, context);
        if (await invoker.LoadAsync(agent, context.CancellationToken) is null)
        {
            // Memories can outlive stats (episodes kept from before a crash, or restored): they make an agent too.
            var usage = await memory.GetUsageAsync(new GetMemoryUsageRequest { Agent = RefOf(agent) }, context.CancellationToken);
            if (usage.WorkingTurns + usage.SemanticMemories + usage.Episodes == 0)
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"agent: '{agent.Name}' has no interactions yet"));
            }
        }

        return agent;
    }

    private async Task<AgentAggregate> LoadExistingAsync(AgentId agent, CancellationToken cancellationToken) =>
        await invoker.LoadAsync(agent, cancellationToken)
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"agent: '{agent.Name}' has no interactions yet"));
}
