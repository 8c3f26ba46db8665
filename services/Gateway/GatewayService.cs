using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Polly.CircuitBreaker;
using Polly.RateLimiting;
using Polly.Timeout;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace PersistentAgents.Gateway;

/// <summary>A model the gateway can call: its provider adapter and its catalog entry.</summary>
public sealed record ActiveModel(IChatModelProvider Provider, ModelDefinition Definition);

/// <summary>
/// Tries the ranked candidates in order, each through its provider's resilience pipeline, and returns the
/// first reply with its tokens and cost, or every attempt when all failed.
/// </summary>
public sealed class GatewayService(
    IReadOnlyList<ActiveModel> models,
    ProviderResilience resilience,
    TokenCounter tokenCounter,
    ResponseCache cache,
    SpendLedger budgets,
    TimeProvider timeProvider,
    ILogger<GatewayService> logger) : IGatewayApi
{
    private readonly Dictionary<(string Provider, string Model), ActiveModel> _byArm =
        models.ToDictionary(m => (m.Provider.Name, m.Definition.Name));

    public Task<GatewayReply> CompleteAsync(GatewayRequest request, CancellationToken cancellationToken) =>
        CompleteAsync(request, onDelta: null, cancellationToken);

    public Task<GatewayReply> CompleteStreamingAsync(GatewayRequest request, Func<GatewayDelta, CancellationToken, ValueTask> onDelta, CancellationToken cancellationToken) =>
        CompleteAsync(request, onDelta, cancellationToken);

    private async Task<GatewayReply> CompleteAsync(GatewayRequest request, Func<GatewayDelta, CancellationToken, ValueTask>? onDelta, CancellationToken cancellationToken)
    {
        var started = timeProvider.GetTimestamp();
        var lookup = await cache.LookupAsync(request, cancellationToken);
        GatewayTelemetry.CacheLookup(lookup.Reply is null ? "miss" : lookup.Hit == CacheHit.Exact ? "exact" : "semantic");
        if (lookup.Reply is { } cached)
        {
            if (onDelta is not null)
            {
                await onDelta(new GatewayDelta { Text = cached.Text, Arm = cached.Arm, Simulated = cached.Simulated, CacheHit = true }, cancellationToken);
            }

            return FromCache(cached, lookup.Hit, started);
        }

        var messages = request.Messages.Select(ToAiMessage).ToList();
        var inputTokens = tokenCounter.Count(string.Join('\n', request.Messages.Select(m => m.Content)));
        var candidates = request.Candidates.Count > 0
            ? request.Candidates.ToList()
            : models.Select(m => new ArmRef { Provider = m.Provider.Name, Model = m.Definition.Name }).ToList();
        var reply = new GatewayReply { ReportedQuality = -1 };
        string? budgetRefusal = null;
        var probe = candidates.FirstOrDefault(a => _byArm.ContainsKey((a.Provider, a.Model)) && resilience.TryClaimProbe(a.Provider));
        if (probe is not null)
        {
            candidates.Remove(probe);
            candidates.Insert(0, probe);
        }

        try
        {
            await TryCandidatesAsync(request, candidates, messages, inputTokens, reply, refusal => budgetRefusal ??= refusal, onDelta, cancellationToken);
        }
        finally
        {
            if (probe is not null)
            {
                resilience.ReleaseProbe(probe.Provider);
            }
        }

        reply.LatencyMs = ElapsedMs(started);
        if (reply.Success)
        {
            await cache.StoreAsync(request, lookup, reply, cancellationToken);
        }
        else if (budgetRefusal is not null && reply.Attempts.All(a => a.Outcome == "skipped"))
        {
            reply.BudgetExhausted = true;
            reply.BudgetMessage = budgetRefusal;
        }

        return reply;
    }

    private async Task TryCandidatesAsync(
        GatewayRequest request, List<ArmRef> candidates, List<AiChatMessage> messages, int inputTokens, GatewayReply reply,
        Action<string> refuseForBudget, Func<GatewayDelta, CancellationToken, ValueTask>? onDelta, CancellationToken cancellationToken)
    {
        var streamed = new StreamProgress();
        foreach (var arm in candidates)
        {
            if (!_byArm.TryGetValue((arm.Provider, arm.Model), out var model))
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "not in the active catalog" });
                continue;
            }

            // Every candidate is checked against the budget, so a failover from a free model to a paid one
            // cannot spend past it.
            var estimate = CostOf(model.Definition, inputTokens, budgets.ReservedOutputTokens);
            var (reservation, budget, committed) = budgets.TryReserve(request.Tenant, request.Agent, estimate);
            if (reservation is null)
            {
                refuseForBudget(FormattableString.Invariant(
                    $"agent '{request.Agent}' has a daily budget of {budget:0.######} USD and {committed:0.######} USD is spent or reserved today; {arm.Provider}/{arm.Model} would cost up to {estimate:0.######} USD"));
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "over budget" });
                continue;
            }

            var attemptStarted = timeProvider.GetTimestamp();
            var system = model.Provider.Kind.ToString().ToLowerInvariant();
            using var attempt = GatewayTelemetry.StartAttempt(system, arm, request.Agent, request.TaskType);
            try
            {
                var completion = await resilience.PipelineFor(arm.Provider).ExecuteAsync(
                    async token => onDelta is null
                        ? await model.Provider.CompleteAsync(model.Definition, request.TaskType, messages, FormatOf(request), token)
                        : await StreamAsync(model, request.TaskType, messages, FormatOf(request), onDelta, streamed, token),
                    cancellationToken);
                var tokensIn = completion.InputTokens ?? inputTokens;
                var tokensOut = completion.OutputTokens ?? tokenCounter.Count(completion.Text);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "succeeded", LatencyMs = ElapsedMs(attemptStarted) });
                reply.Success = true;
                reply.Text = completion.Text;
                reply.Arm = arm;
                reply.Simulated = model.Provider.Simulated;
                reply.TokensIn = tokensIn;
                reply.TokensOut = tokensOut;
                reply.CostUsd = CostOf(model.Definition, tokensIn, tokensOut);
                reply.ReferenceCostUsd = models.Max(m => CostOf(m.Definition, tokensIn, tokensOut));
                reply.ReportedQuality = completion.ReportedQuality ?? -1;
                budgets.Settle(reservation, reply.CostUsd);
                GatewayTelemetry.Succeeded(attempt, system, arm, tokensIn, tokensOut, reply.CostUsd, timeProvider.GetElapsedTime(attemptStarted));
                break;
            }
            catch (BrokenCircuitException)
            {
                budgets.Release(reservation);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "circuit open" });
            }
            catch (RateLimiterRejectedException)
            {
                budgets.Release(reservation);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "too many calls in flight" });
            }
            catch (Exception e) when (e is ProviderException or TimeoutRejectedException)
            {
                budgets.Release(reservation);
                var error = e is TimeoutRejectedException ? "timed out" : e.Message;
                logger.LogWarning("Provider {Provider}/{Model} failed: {Error}", arm.Provider, arm.Model, error);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "failed", Error = error, LatencyMs = ElapsedMs(attemptStarted) });
                GatewayTelemetry.Failed(attempt, system, arm, e is TimeoutRejectedException ? "timeout" : "provider_error", timeProvider.GetElapsedTime(attemptStarted));
                if (streamed.Characters > 0)
                {
                    // Text already reached the caller: another candidate would start a second reply.
                    reply.Arm = arm;
                    reply.Simulated = model.Provider.Simulated;
                    reply.StreamError = $"{arm.Provider}/{arm.Model} broke after {streamed.Characters} characters were sent: {error}";
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Streams one candidate's reply to <paramref name="onDelta"/> and assembles it. Once text has gone out
    /// a failure is not retryable, whatever its cause: a retry would send the caller a second beginning.
    /// </summary>
    private static async Task<ProviderCompletion> StreamAsync(
        ActiveModel model, string taskType, List<AiChatMessage> messages, ReplyFormat format, Func<GatewayDelta, CancellationToken, ValueTask> onDelta, StreamProgress streamed, CancellationToken cancellationToken)
    {
        var text = new System.Text.StringBuilder();
        ProviderChunk? last = null;
        try
        {
            await foreach (var chunk in model.Provider.StreamAsync(model.Definition, taskType, messages, format, cancellationToken))
            {
                if (chunk.TextDelta.Length > 0)
                {
                    text.Append(chunk.TextDelta);
                    var delta = new GatewayDelta { Text = chunk.TextDelta };
                    if (streamed.Characters == 0)
                    {
                        delta.Arm = new ArmRef { Provider = model.Provider.Name, Model = model.Definition.Name };
                        delta.Simulated = model.Provider.Simulated;
                    }

                    streamed.Characters += chunk.TextDelta.Length;
                    await onDelta(delta, cancellationToken);
                }

                last = chunk.IsLast ? chunk : last;
            }
        }
        catch (ProviderException e) when (streamed.Characters > 0 && e.Retryable)
        {
            throw new ProviderException(e.Message, retryable: false, e);
        }

        if (last is null)
        {
            throw new ProviderException($"{model.Provider.Name} ended its stream without finishing it", retryable: streamed.Characters == 0);
        }

        return new ProviderCompletion(text.ToString(), last.InputTokens, last.OutputTokens, last.ReportedQuality, last.CachedInputTokens);
    }

    private sealed class StreamProgress
    {
        public int Characters { get; set; }
    }

    /// <summary>A cached reply costs nothing and consumes no tokens; its path names the arm that first made it.</summary>
    private GatewayReply FromCache(GatewayReply cached, CacheHit hit, long started)
    {
        var reply = cached.Clone();
        reply.CacheHit = true;
        reply.CostUsd = 0;
        reply.TokensIn = 0;
        reply.TokensOut = 0;
        reply.Attempts.Clear();
        reply.Attempts.Add(new Attempt { Arm = cached.Arm, Outcome = hit == CacheHit.Exact ? "cached" : "cached-semantic" });
        reply.LatencyMs = ElapsedMs(started);
        return reply;
    }

    public Task<ModelCatalog> ListModelsAsync(ListModelsRequest request, CancellationToken cancellationToken)
    {
        var catalog = new ModelCatalog();
        catalog.Models.AddRange(models.Select(m => new ModelEntry
        {
            Arm = new ArmRef { Provider = m.Provider.Name, Model = m.Definition.Name },
            Kind = m.Provider.Kind.ToString().ToLowerInvariant(),
            InputPricePerMtok = m.Definition.InputPricePerMTok,
            OutputPricePerMtok = m.Definition.OutputPricePerMTok,
            PriorQuality = m.Definition.Quality,
            ContextWindow = m.Definition.ContextWindow,
            Simulated = m.Provider.Simulated,
            Capabilities = { m.Definition.Capabilities },
        }));
        return Task.FromResult(catalog);
    }

    public Task<BudgetState> GetBudgetAsync(BudgetRequest request, CancellationToken cancellationToken)
    {
        var state = new BudgetState { ReservedOutputTokens = budgets.ReservedOutputTokens };
        if (budgets.DailyBudget(request.Agent) is { } daily)
        {
            var committed = budgets.CommittedToday(request.Tenant, request.Agent);
            state.HasBudget = true;
            state.DailyUsd = daily;
            state.CommittedUsd = committed;
            state.RemainingUsd = Math.Max(0, daily - committed);
        }

        return Task.FromResult(state);
    }

    internal static ReplyFormat FormatOf(GatewayRequest request) =>
        request.ResponseFormat == "json" ? ReplyFormat.Json : ReplyFormat.Text;

    public Task<ProviderHealthReply> GetProviderHealthAsync(ProviderHealthRequest request, CancellationToken cancellationToken)
    {
        var reply = new ProviderHealthReply();
        reply.Providers.AddRange(models
            .Select(m => m.Provider)
            .DistinctBy(p => p.Name)
            .Select(p => new ProviderState { Provider = p.Name, Circuit = resilience.CircuitStateOf(p.Name), Simulated = p.Simulated }));
        var counters = cache.Counters;
        reply.Cache = new ResponseCacheStats { ExactHits = counters.ExactHits, SemanticHits = counters.SemanticHits, Misses = counters.Misses, Entries = counters.Entries };
        return Task.FromResult(reply);
    }

    /// <summary>USD for the tokens at the model's catalog prices (per one million tokens).</summary>
    public static double CostOf(ModelDefinition model, long tokensIn, long tokensOut) =>
        ((tokensIn * model.InputPricePerMTok) + (tokensOut * model.OutputPricePerMTok)) / 1_000_000d;

    private double ElapsedMs(long since) => timeProvider.GetElapsedTime(since).TotalMilliseconds;

    private static AiChatMessage ToAiMessage(ChatMessage message) => new(
        message.Role switch
        {
            "system" => AiChatRole.System,
            "assistant" => AiChatRole.Assistant,
            _ => AiChatRole.User,
        },
        message.Content);
}
