using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PersistentAgents.Agents.Routing;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents;

/// <summary>
/// One turn of a persistent agent (docs/architecture.md, 'The turn'): working memory, semantic recall,
/// routing, the gateway, remembering, learning and the reply. The caller guarantees one turn at a time per
/// agent.
/// </summary>
public sealed class AgentLoop(
    IMemoryApi memory,
    ILearningApi learning,
    IGatewayApi gateway,
    IAgentStateStore state,
    IEventPublisher events,
    IOptions<AgentLimits> limits,
    IOptions<AgentRoutingOptions> routing,
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
        using var turn = AgentsTelemetry.StartTurn(agent, request.TaskType, interactionId);
        // Filled in as the turn goes, so that what it went without is in the reply and in its episode.
        var reply = new CompleteReply { InteractionId = interactionId, TaskType = request.TaskType, SessionId = request.SessionId };
        var faults = new TurnFaults(agent, interactionId, turn, reply.Degraded, logger, cancellationToken);

        // Without memory the agent still answers, only knowing less: it is a reason to say so, not to refuse.
        WorkingMemory working;
        RecallReply recalled;
        using (AgentsTelemetry.StartStep("memory.recall"))
        {
            working = await faults.OrDegradedAsync(
                "memory", "working memory unavailable",
                token => memory.GetWorkingMemoryAsync(new GetWorkingMemoryRequest { Agent = agentRef, SessionId = request.SessionId, MaxTurns = _limits.WorkingMemoryTurns }, token),
                () => new WorkingMemory());
            recalled = await faults.OrDegradedAsync(
                "memory", "recall unavailable",
                token => memory.RecallAsync(new RecallRequest { Agent = agentRef, Query = request.Prompt, TopK = _limits.RecallTopK, MinSimilarity = _limits.RecallMinSimilarity, TokenBudget = _limits.RecallTokenBudget }, token),
                () => new RecallReply());
        }

        var memoriesUsed = recalled.Memories;
        if (recalled.Degraded.Length > 0)
        {
            reply.Degraded.Add(recalled.Degraded);
        }

        RankReply route;
        using (var routing = AgentsTelemetry.StartStep("learning.route"))
        {
            route = await RouteAsync(agent, request, faults);
            routing?.SetTag("persistent_agents.strategy", route.Strategy);
            routing?.SetTag("persistent_agents.route_context", route.Context);
            routing?.SetTag("persistent_agents.chosen", $"{route.Ranked[0].Provider}/{route.Ranked[0].Model}");
        }

        var gatewayRequest = new GatewayRequest
        {
            Tenant = agent.Tenant, Agent = agent.Name, TaskType = request.TaskType, NoCache = request.NoCache, ResponseFormat = request.ResponseFormat,
        };
        gatewayRequest.Messages.AddRange(BuildMessages(agent, request, working, memoriesUsed));
        if (request.ContextJson is null)
        {
            // The question the cache compares is the prompt recall just embedded: one embedding serves both.
            gatewayRequest.QuestionEmbedding.AddRange(recalled.QueryEmbedding);
            gatewayRequest.QuestionEmbedderId = recalled.Embedder;
            gatewayRequest.QuestionEmbeddingTruncated = recalled.QueryTruncated;
        }

        gatewayRequest.Candidates.AddRange(route.Ranked);
        // Arms left out for the budget go last: the gateway, which holds the budget, skips them when they would
        // still pass it, and so can say that the budget, not only the failures before them, refused the turn.
        gatewayRequest.Candidates.AddRange(route.Excluded.Where(e => e.Reason == "budget").Select(e => e.Arm));
        GatewayReply result;
        using (AgentsTelemetry.StartStep("gateway.complete"))
        {
            result = await faults.OrUnavailableAsync(
                reason => $"gateway: unavailable ({reason})",
                token => onDelta is null
                    ? gateway.CompleteAsync(gatewayRequest, token)
                    : gateway.CompleteStreamingAsync(gatewayRequest, (delta, ct) => delta.Text.Length > 0 ? onDelta(delta.Text, ct) : ValueTask.CompletedTask, token));
        }

        if (result.BudgetExhausted)
        {
            // Nothing answered, and what could have was over budget: nothing is remembered, as for any refused
            // turn, and learning does not count the failures before the budget (the providers' circuits do).
            throw BudgetDay.Refusal($"budget: {result.BudgetMessage}", result.BudgetRetryAfterSeconds);
        }

        if (result.CallerError is { } refused)
        {
            // The provider refused the request itself (a content policy, a context too long for every model): the
            // caller's to fix, not an arm's failure, so nothing is remembered and learning does not count it.
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"prompt: {refused.Message} ({refused.Code})"));
        }

        reply.Text = result.Text;
        reply.Provider = result.Arm?.Provider ?? "";
        reply.Model = result.Arm?.Model ?? "";
        reply.Simulated = result.Simulated;
        reply.TokensIn = result.TokensIn;
        reply.TokensOut = result.TokensOut;
        reply.CostUsd = result.CostUsd;
        reply.CacheHit = result.CacheHit;
        reply.Strategy = route.Strategy;
        reply.Quality = result.Success ? QualityOf(result, request.ResponseFormat) : 0;
        reply.RouteContext = route.Context;
        reply.Experiment = route.Experiment;
        reply.Variant = route.Variant;
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

        // The episode and the statistics are written before the reply leaves, so an acknowledged interaction
        // survives a crash; when either cannot be written the turn is refused rather than acknowledged. The
        // episode goes first: it is the full record from which the rest can be rebuilt.
        using (AgentsTelemetry.StartStep("memory.remember"))
        {
            await faults.OrUnavailableAsync(
                reason => $"memory: interaction {interactionId} could not be stored ({reason}); it was not acknowledged",
                token => memory.AppendEpisodeAsync(
                    new AppendEpisodeRequest { Agent = agentRef, InteractionId = interactionId, At = Timestamp.FromDateTimeOffset(at), Json = EpisodeJson(agent, request, reply, result.Success, at) },
                    token));
            await faults.OrUnavailableAsync(
                reason => $"state: the statistics of interaction {interactionId} could not be stored ({reason}); it was not acknowledged",
                async token => await state.SaveAsync(agent, Accumulate(await state.LoadAsync(agent, token) ?? new AgentAggregate(), request.TaskType, reply, result, at), token));
            if (result.Success)
            {
                // Past the episode, a turn missing from working or semantic memory only leaves later turns knowing less.
                await faults.OrDegradedAsync(
                    "memory", "this turn is not in working memory",
                    token => memory.AppendTurnAsync(
                        new AppendTurnRequest { Agent = agentRef, SessionId = request.SessionId, Turn = new Turn { Prompt = request.Prompt, Reply = reply.Text, InteractionId = interactionId, At = Timestamp.FromDateTimeOffset(at) } },
                        token));
                await faults.OrDegradedAsync(
                    "memory", "this interaction is not in semantic memory",
                    async token =>
                    {
                        var remembered = await memory.RememberAsync(
                            new RememberRequest { Agent = agentRef, Id = interactionId, Text = MemoryText(request, reply.Text), TaskType = request.TaskType, Success = true, CostUsd = reply.CostUsd },
                            token);
                        logger.LogDebug("Agent {Agent} remembered interaction {Interaction} as {Memory}", agent, interactionId, remembered.Id);
                    });
            }
        }

        using (AgentsTelemetry.StartStep("events.publish"))
        {
            await faults.OrDegradedAsync(
                "events", "the outcome was not published, so learning and analytics miss this interaction",
                token => events.PublishAsync(Topics.InteractionCompleted, interactionId, OutcomeOf(agent, request, route, reply, result, at), token));
        }

        AgentsTelemetry.Completed(request.TaskType, result.Success && result.StreamError.Length == 0, timeProvider.GetElapsedTime(started));
        turn?.SetTag("persistent_agents.success", result.Success);

        if (result.StreamError.Length > 0)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"stream: {result.StreamError} (interaction {interactionId})"));
        }

        if (!result.Success)
        {
            var tried = string.Join("; ", result.Attempts.Select(a => $"{a.Arm.Provider}/{a.Arm.Model} {a.Outcome}: {a.Error}"));
            throw new RpcException(new Status(
                result.DeadlineExceeded ? StatusCode.DeadlineExceeded : StatusCode.Unavailable,
                $"{(result.DeadlineExceeded ? "the request deadline passed" : "every provider failed")} for interaction {interactionId}: {tried}"));
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

    /// <summary>
    /// The fallback chain from the learning service, with the hard constraints it needs: open circuits,
    /// required capabilities, the remaining budget; in catalog order when the learning service cannot rank.
    /// Refuses the turn, before anything is stored, when no model can take it or the gateway's catalog cannot
    /// be read.
    /// </summary>
    private async Task<RankReply> RouteAsync(AgentId agent, ValidCompleteRequest request, TurnFaults faults)
    {
        var catalog = await faults.OrUnavailableAsync(
            reason => $"gateway: the model catalog is unavailable ({reason})",
            token => gateway.ListModelsAsync(new ListModelsRequest(), token));
        // The gateway itself skips open circuits and holds every call to the budget, so routing without either
        // only orders the chain less well.
        var health = await faults.OrDegradedAsync(
            "gateway", "provider health unknown, no circuit taken as open",
            token => gateway.GetProviderHealthAsync(new ProviderHealthRequest(), token),
            () => new ProviderHealthReply());
        var budget = await faults.OrDegradedAsync(
            "gateway", "budget unknown, routed without it",
            token => gateway.GetBudgetAsync(new BudgetRequest { Tenant = agent.Tenant, Agent = agent.Name }, token),
            () => new BudgetState());
        var openProviders = health.Providers.Where(p => p.Circuit == "open").Select(p => p.Provider).ToHashSet(StringComparer.Ordinal);
        var estimatedInputTokens = (request.Prompt.Length + (request.ContextJson?.Length ?? 0)) / 4;
        var rank = new RankRequest
        {
            Tenant = agent.Tenant,
            Agent = agent.Name,
            TaskType = request.TaskType,
            EstimatedInputTokens = estimatedInputTokens,
            EstimatedOutputTokens = budget.ReservedOutputTokens,
            Policy = request.Policy.Length > 0 ? request.Policy : routing.Value.PolicyFor(agent.Name),
            Complexity = PromptComplexity.Of(request.Prompt, request.ContextJson),
            HasBudget = budget.HasBudget,
            RemainingBudgetUsd = budget.RemainingUsd,
        };
        if (request.ResponseFormat == "json")
        {
            rank.RequiredCapabilities.Add("json");
        }

        rank.Candidates.AddRange(catalog.Models.Select(m => new CandidateArm
        {
            Arm = m.Arm,
            InputPricePerMtok = m.InputPricePerMtok,
            OutputPricePerMtok = m.OutputPricePerMtok,
            PriorQuality = m.PriorQuality,
            Available = !openProviders.Contains(m.Arm.Provider),
            ContextWindow = m.ContextWindow,
            Capabilities = { m.Capabilities },
        }));
        var route = await faults.OrDegradedAsync(
            "learning", "ranking unavailable, routed in catalog order",
            token => learning.RankAsync(rank, token),
            () => CatalogOrderRanking.Rank(rank));
        if (route.Ranked.Count > 0)
        {
            return route;
        }

        var reasons = route.Excluded.Select(e => e.Reason).ToHashSet(StringComparer.Ordinal);
        throw reasons.Contains("budget")
            ? BudgetDay.Refusal(
                FormattableString.Invariant(
                    $"budget: agent '{agent.Name}' has a daily budget of {budget.DailyUsd:0.######} USD and {budget.CommittedUsd:0.######} USD is spent or reserved today; every model that fits would cost more than the {budget.RemainingUsd:0.######} USD left"),
                budget.RetryAfterSeconds)
            : reasons.Contains("capability")
                ? new RpcException(new Status(StatusCode.FailedPrecondition, "responseFormat: no model in the catalog can give a JSON reply"))
                : new RpcException(new Status(StatusCode.FailedPrecondition, $"prompt: about {estimatedInputTokens} tokens, more than any model's context window"));
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

    /// <summary>
    /// 0 when a validator fails (an empty reply, or one that is not the JSON asked for); else the provider's
    /// own quality signal when it gives one, else 1. Explicit feedback comes later, through the feedback API.
    /// </summary>
    private static double QualityOf(GatewayReply result, string responseFormat)
    {
        if (string.IsNullOrWhiteSpace(result.Text) || (responseFormat == "json" && !IsJson(result.Text)))
        {
            return 0;
        }

        return result.ReportedQuality >= 0 ? result.ReportedQuality : 1;
    }

    private static bool IsJson(string text)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(text);
            return document.RootElement.ValueKind is System.Text.Json.JsonValueKind.Object or System.Text.Json.JsonValueKind.Array;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

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
            LastInteractionId = reply.InteractionId,
        };
    }

    private static InteractionCompleted OutcomeOf(AgentId agent, ValidCompleteRequest request, RankReply route, CompleteReply reply, GatewayReply result, DateTimeOffset at)
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
            Context = route.Context,
            Experiment = route.Experiment,
            Variant = route.Variant,
            Chosen = route.Ranked[0],
            CostWeight = route.CostWeight,
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
