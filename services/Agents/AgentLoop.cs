using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents;

/// <summary>
/// One turn of a persistent agent (design §5): working memory, semantic recall, routing, the gateway,
/// remembering, learning and the reply. The caller guarantees one turn at a time per agent.
/// </summary>
public sealed class AgentLoop(
    IMemoryApi memory,
    ILearningApi learning,
    IGatewayApi gateway,
    IAgentStateStore state,
    IEventPublisher events,
    IOptions<AgentLimits> limits,
    TimeProvider timeProvider,
    ILogger<AgentLoop> logger)
{
    private readonly AgentLimits _limits = limits.Value;

    /// <param name="onDelta">When given, the reply is streamed: each piece of text goes here as it is made.</param>
    public async Task<CompleteReply> CompleteAsync(
        AgentId agent, ValidCompleteRequest request, Func<string, CancellationToken, ValueTask>? onDelta, CancellationToken cancellationToken)
    {
        var started = timeProvider.GetTimestamp();
        var at = timeProvider.GetUtcNow();
        var interactionId = InteractionIds.New(at);
        var agentRef = new AgentRef { Tenant = agent.Tenant, Agent = agent.Name };

        var working = await memory.GetWorkingMemoryAsync(
            new GetWorkingMemoryRequest { Agent = agentRef, SessionId = request.SessionId, MaxTurns = _limits.WorkingMemoryTurns },
            cancellationToken);
        var recalled = await memory.RecallAsync(
            new RecallRequest { Agent = agentRef, Query = request.Prompt, TopK = _limits.RecallTopK, MinSimilarity = _limits.RecallMinSimilarity, TokenBudget = _limits.RecallTokenBudget },
            cancellationToken);
        var memoriesUsed = recalled.Memories;

        var route = await RouteAsync(agent, request, cancellationToken);
        var gatewayRequest = new GatewayRequest { Tenant = agent.Tenant, Agent = agent.Name, TaskType = request.TaskType, NoCache = request.NoCache };
        gatewayRequest.Messages.AddRange(BuildMessages(agent, request, working, memoriesUsed));
        gatewayRequest.Candidates.AddRange(route.Ranked);
        var result = onDelta is null
            ? await gateway.CompleteAsync(gatewayRequest, cancellationToken)
            : await gateway.CompleteStreamingAsync(gatewayRequest, onDelta, cancellationToken);
        if (result.BudgetExhausted)
        {
            // Refused before any provider was called: nothing happened, so nothing is remembered.
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"budget: {result.BudgetMessage}"));
        }

        var reply = new CompleteReply
        {
            Text = result.Text,
            Provider = result.Arm?.Provider ?? "",
            Model = result.Arm?.Model ?? "",
            Simulated = result.Simulated,
            TokensIn = result.TokensIn,
            TokensOut = result.TokensOut,
            CostUsd = result.CostUsd,
            CacheHit = result.CacheHit,
            InteractionId = interactionId,
            TaskType = request.TaskType,
            SessionId = request.SessionId,
            Strategy = route.Strategy,
            Quality = result.Success ? QualityOf(result) : 0,
        };
        reply.FallbackPath.AddRange(result.Attempts.Select(a => new FallbackAttempt
        {
            Provider = a.Arm.Provider,
            Model = a.Arm.Model,
            Outcome = a.Outcome,
            Error = a.Error,
            LatencyMs = a.LatencyMs,
        }));
        reply.MemoryIds.AddRange(memoriesUsed.Select(m => m.Id));
        reply.LatencyMs = timeProvider.GetElapsedTime(started).TotalMilliseconds;

        // Everything below is written before the reply leaves, so an acknowledged interaction survives a
        // crash. The episode goes first: it is the full record from which the rest can be rebuilt.
        await memory.AppendEpisodeAsync(
            new AppendEpisodeRequest { Agent = agentRef, InteractionId = interactionId, At = Timestamp.FromDateTimeOffset(at), Json = EpisodeJson(agent, request, reply, result.Success, at) },
            cancellationToken);
        await state.SaveAsync(agent, Accumulate(await state.LoadAsync(agent, cancellationToken) ?? new AgentAggregate(), request.TaskType, reply, result, at), cancellationToken);
        if (result.Success)
        {
            await memory.AppendTurnAsync(
                new AppendTurnRequest { Agent = agentRef, SessionId = request.SessionId, Turn = new Turn { Prompt = request.Prompt, Reply = reply.Text, InteractionId = interactionId, At = Timestamp.FromDateTimeOffset(at) } },
                cancellationToken);
            var remembered = await memory.RememberAsync(
                new RememberRequest { Agent = agentRef, Id = interactionId, Text = MemoryText(request, reply.Text), TaskType = request.TaskType, Success = true, CostUsd = reply.CostUsd },
                cancellationToken);
            logger.LogDebug("Agent {Agent} remembered interaction {Interaction} as {Memory}", agent, interactionId, remembered.Id);
        }

        await events.PublishAsync(Topics.InteractionCompleted, interactionId, OutcomeOf(agent, request, reply, result, at), cancellationToken);

        if (result.StreamError.Length > 0)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"stream: {result.StreamError} (interaction {interactionId})"));
        }

        if (!result.Success)
        {
            var tried = string.Join("; ", result.Attempts.Select(a => $"{a.Arm.Provider}/{a.Arm.Model} {a.Outcome}: {a.Error}"));
            throw new RpcException(new Status(StatusCode.Unavailable, $"every provider failed for interaction {interactionId}: {tried}"));
        }

        return reply;
    }

    /// <summary>Forgets the agent: every memory tier and its statistics.</summary>
    public async Task<PurgeReply> PurgeAsync(AgentId agent, CancellationToken cancellationToken)
    {
        var purged = await memory.PurgeAsync(new PurgeRequest { Agent = new AgentRef { Tenant = agent.Tenant, Agent = agent.Name } }, cancellationToken);
        await state.DeleteAsync(agent, cancellationToken);
        logger.LogInformation("Agent {Agent} purged: {Purged}", agent, purged);
        return purged;
    }

    private async Task<RankReply> RouteAsync(AgentId agent, ValidCompleteRequest request, CancellationToken cancellationToken)
    {
        var catalog = await gateway.ListModelsAsync(new ListModelsRequest(), cancellationToken);
        var health = await gateway.GetProviderHealthAsync(new ProviderHealthRequest(), cancellationToken);
        var openProviders = health.Providers.Where(p => p.Circuit == "open").Select(p => p.Provider).ToHashSet(StringComparer.Ordinal);
        var rank = new RankRequest { Tenant = agent.Tenant, Agent = agent.Name, TaskType = request.TaskType, EstimatedInputTokens = request.Prompt.Length / 4 };
        rank.Candidates.AddRange(catalog.Models.Select(m => new CandidateArm
        {
            Arm = m.Arm,
            InputPricePerMtok = m.InputPricePerMtok,
            OutputPricePerMtok = m.OutputPricePerMtok,
            PriorQuality = m.PriorQuality,
            Available = !openProviders.Contains(m.Arm.Provider),
        }));
        return await learning.RankAsync(rank, cancellationToken);
    }

    private static IEnumerable<ChatMessage> BuildMessages(AgentId agent, ValidCompleteRequest request, WorkingMemory working, Google.Protobuf.Collections.RepeatedField<RecalledMemory> memories)
    {
        var system = new StringBuilder($"You are the persistent agent '{agent.Name}'. Task type: {request.TaskType}.");
        if (memories.Count > 0)
        {
            system.Append("\nRelevant memories from your earlier interactions:");
            foreach (var recalled in memories)
            {
                system.Append("\n- ").Append(recalled.Text);
            }
        }

        yield return new ChatMessage { Role = "system", Content = system.ToString() };
        foreach (var turn in working.Turns)
        {
            yield return new ChatMessage { Role = "user", Content = turn.Prompt };
            yield return new ChatMessage { Role = "assistant", Content = turn.Reply };
        }

        var prompt = request.ContextJson is null ? request.Prompt : $"Context: {request.ContextJson}\n\n{request.Prompt}";
        yield return new ChatMessage { Role = "user", Content = prompt };
    }

    /// <summary>The provider's own quality signal when it gives one, else the non-empty validator.</summary>
    private static double QualityOf(GatewayReply result) =>
        result.ReportedQuality >= 0 ? result.ReportedQuality : (string.IsNullOrWhiteSpace(result.Text) ? 0 : 1);

    private static string MemoryText(ValidCompleteRequest request, string reply)
    {
        var text = $"[{request.TaskType}] Q: {request.Prompt} A: {reply}";
        return text.Length <= 1_000 ? text : text[..1_000];
    }

    private static AgentAggregate Accumulate(AgentAggregate aggregate, string taskType, CompleteReply reply, GatewayReply result, DateTimeOffset at)
    {
        var taskTypes = aggregate.TaskTypes;
        var perTask = taskTypes.TryGetValue(taskType, out var existing) ? existing : taskTypes[taskType] = new TaskTypeAggregate();
        perTask.Interactions++;
        perTask.Successes += result.Success ? 1 : 0;
        perTask.Failures += result.Success ? 0 : 1;
        perTask.CostUsd += reply.CostUsd;
        foreach (var attempt in result.Attempts.Where(a => a.Outcome is "succeeded" or "failed"))
        {
            var key = $"{attempt.Arm.Provider}/{attempt.Arm.Model}";
            var arm = perTask.Arms.TryGetValue(key, out var known) ? known : perTask.Arms[key] = new ArmAggregate { Provider = attempt.Arm.Provider, Model = attempt.Arm.Model };
            arm.Calls++;
            if (attempt.Outcome == "succeeded")
            {
                arm.Successes++;
                arm.QualitySum += reply.Quality;
                arm.CostUsd += reply.CostUsd;
            }
        }

        return aggregate with
        {
            Interactions = aggregate.Interactions + 1,
            Successes = aggregate.Successes + (result.Success ? 1 : 0),
            Failures = aggregate.Failures + (result.Success ? 0 : 1),
            CostUsd = aggregate.CostUsd + reply.CostUsd,
            TokensIn = aggregate.TokensIn + reply.TokensIn,
            TokensOut = aggregate.TokensOut + reply.TokensOut,
            TotalLatencyMs = aggregate.TotalLatencyMs + reply.LatencyMs,
            LastActivity = at,
        };
    }

    private static InteractionCompleted OutcomeOf(AgentId agent, ValidCompleteRequest request, CompleteReply reply, GatewayReply result, DateTimeOffset at)
    {
        var outcome = new InteractionCompleted
        {
            InteractionId = reply.InteractionId,
            Tenant = agent.Tenant,
            Agent = agent.Name,
            TaskType = request.TaskType,
            Success = result.Success,
            Quality = reply.Quality,
            CostUsd = reply.CostUsd,
            LatencyMs = reply.LatencyMs,
            ReferenceCostUsd = result.ReferenceCostUsd,
            TokensIn = reply.TokensIn,
            TokensOut = reply.TokensOut,
            At = Timestamp.FromDateTimeOffset(at),
            Strategy = reply.Strategy,
        };
        outcome.Attempts.AddRange(result.Attempts
            .Where(a => a.Outcome is "succeeded" or "failed")
            .Select(a => new AttemptOutcome { Arm = a.Arm, Success = a.Outcome == "succeeded" }));
        return outcome;
    }

    private static string EpisodeJson(AgentId agent, ValidCompleteRequest request, CompleteReply reply, bool success, DateTimeOffset at) =>
        new JsonObject
        {
            ["interactionId"] = reply.InteractionId,
            ["tenant"] = agent.Tenant,
            ["agent"] = agent.Name,
            ["at"] = at.ToString("O", CultureInfo.InvariantCulture),
            ["sessionId"] = request.SessionId,
            ["taskType"] = request.TaskType,
            ["prompt"] = request.Prompt,
            ["context"] = request.ContextJson is null ? null : JsonNode.Parse(request.ContextJson),
            ["success"] = success,
            ["reply"] = JsonNode.Parse(JsonFormatter.Default.Format(reply)),
        }.ToJsonString();
}
