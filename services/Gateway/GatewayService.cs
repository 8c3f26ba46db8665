using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Polly.CircuitBreaker;
using Polly.RateLimiting;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace PersistentAgents.Gateway;

/// <summary>A model the gateway can call: its provider adapter, its catalog entry, and its provider's limit on a whole non-streamed call.</summary>
public sealed record ActiveModel(IChatModelProvider Provider, ModelDefinition Definition)
{
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Tries the ranked candidates in order, each through its provider's resilience pipeline, and returns the
/// first reply with its tokens and cost, or every attempt when all failed. It owns the limits of one request:
/// which candidates can serve it at all (capabilities, context window, budget), how long each attempt may stay
/// silent (first token, stall), when the whole request gives up (the deadline), whether a reply asked for as JSON
/// is one, and which refusals are the caller's to see rather than a reason to try another provider.
/// </summary>
public sealed class GatewayService(
    IReadOnlyList<ActiveModel> models,
    ProviderResilience resilience,
    TokenCounter tokenCounter,
    ResponseCache cache,
    SpendLedger budgets,
    TimeProvider timeProvider,
    ILogger<GatewayService> logger,
    ResilienceOptions? options = null) : IGatewayApi
{
    private readonly Dictionary<(string Provider, string Model), ActiveModel> _byArm =
        models.ToDictionary(m => (m.Provider.Name, m.Definition.Name));

    private readonly TimeSpan _deadline = (options ?? new ResilienceOptions()).RequestDeadline;

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
                var delta = new GatewayDelta { Text = cached.Text, Arm = cached.Arm, Simulated = cached.Simulated, CacheHit = true };
                await onDelta(delta, cancellationToken);
                for (var i = 0; i < cached.ToolCalls.Count; i++)
                {
                    await onDelta(new GatewayDelta { ToolCall = cached.ToolCalls[i], ToolCallIndex = i }, cancellationToken);
                }
            }

            return FromCache(cached, lookup.Hit, started);
        }

        var candidates = request.Candidates.Count > 0
            ? request.Candidates.ToList()
            : models.Select(m => new ArmRef { Provider = m.Provider.Name, Model = m.Definition.Name }).ToList();
        var reply = new GatewayReply { ReportedQuality = -1 };
        var probe = candidates.FirstOrDefault(a => _byArm.ContainsKey((a.Provider, a.Model)) && resilience.TryClaimProbe(a.Provider));
        if (probe is not null)
        {
            candidates.Remove(probe);
            candidates.Insert(0, probe);
        }

        // The deadline bounds the wait for the first byte the caller gets, over all candidates; once a streamed
        // reply is under way it is disarmed, and only the stall limit applies.
        using var deadline = new CancellationTokenSource(Timeout.InfiniteTimeSpan, timeProvider);
        deadline.CancelAfter(_deadline);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var call = new Call(request, GatewayChatOptions.MessagesOf(request), GatewayChatOptions.For(request), onDelta, deadline, cancellationToken);
        call.InputTokens = tokenCounter.Count(string.Join('\n', request.Messages.Select(m => m.Content)));
        try
        {
            await TryCandidatesAsync(call, candidates, reply, bounded.Token);
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

        return reply;
    }

    private async Task TryCandidatesAsync(Call call, List<ArmRef> candidates, GatewayReply reply, CancellationToken token)
    {
        var request = call.Request;
        var overBudget = new OverBudget();
        ProviderException? contextRefusal = null;
        var largestWindowRefused = 0;
        var refusedForTheRequest = new List<string>();
        var otherFailures = 0;
        foreach (var arm in candidates)
        {
            if (!_byArm.TryGetValue((arm.Provider, arm.Model), out var model))
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "not in the active catalog" });
                otherFailures++;
                continue;
            }

            if (Unfit(model.Definition, call) is { } unfit)
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = unfit });
                refusedForTheRequest.Add($"{arm.Provider}/{arm.Model} {unfit}");
                continue;
            }

            if (contextRefusal is not null && model.Definition.ContextWindow <= largestWindowRefused)
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "its context window is not larger than one that refused the input" });
                continue;
            }

            // Every candidate is checked against the budget, so a failover from a free model to a paid one
            // cannot spend past it. The caller's bound on the reply bounds the reservation too.
            var outputBound = request.Options is { HasMaxOutputTokens: true } settings ? settings.MaxOutputTokens : budgets.ReservedOutputTokens;
            var estimate = CostOf(model.Definition, call.InputTokens, outputBound);
            var (reservation, budget, committed) = await budgets.TryReserveAsync(request.Tenant, request.Agent, estimate, token);
            if (reservation is null)
            {
                overBudget.Add(arm, model.Definition.ContextWindow, estimate, budget, committed);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = OverBudget.AttemptError });
                continue;
            }

            var attemptStarted = timeProvider.GetTimestamp();
            var system = model.Provider.Kind.ToString().ToLowerInvariant();
            using var attempt = GatewayTelemetry.StartAttempt(system, arm, request.Agent, request.TaskType);
            var settled = false;
            try
            {
                var completion = await resilience.PipelineFor(arm.Provider).ExecuteAsync(
                    async attemptToken => await AttemptAsync(model, call, attemptToken), token);
                // In the wire's terms once: counted, sent and kept in the reply from the same conversion.
                var toolCalls = (completion.ToolCalls ?? []).Select(GatewayChatOptions.ToToolCall).ToList();
                var tokensIn = completion.InputTokens ?? call.InputTokens;
                var tokensOut = completion.OutputTokens ?? OutputTokensOf(completion.Text, toolCalls);
                var cost = CostOf(model.Definition, tokensIn, tokensOut);
                // Not cancelled with the caller: the call is paid for whether or not anyone still listens.
                await budgets.SettleAsync(reservation, cost, CancellationToken.None);
                settled = true;
                if (FormatOf(request) == ReplyFormat.Json && toolCalls.Count == 0
                    && JsonReplyCheck.ProblemOf(completion.Text, request.JsonSchema) is { } problem)
                {
                    // The provider was paid for it, but the caller cannot use it: the next candidate may do better.
                    logger.LogWarning("Provider {Provider}/{Model} answered unusable JSON: {Problem}", arm.Provider, arm.Model, problem);
                    reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "failed", Error = problem, LatencyMs = ElapsedMs(attemptStarted) });
                    GatewayTelemetry.Failed(attempt, system, arm, "invalid_reply", timeProvider.GetElapsedTime(attemptStarted));
                    otherFailures++;
                    continue;
                }

                if (call.Buffered)
                {
                    await call.SendAsync(model, new GatewayDelta { Text = completion.Text }, token);
                    foreach (var toolCall in toolCalls)
                    {
                        await call.SendAsync(model, new GatewayDelta { ToolCall = toolCall, ToolCallIndex = call.ToolCallsSent }, token);
                    }
                }

                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "succeeded", LatencyMs = ElapsedMs(attemptStarted) });
                reply.Success = true;
                reply.Text = completion.Text;
                reply.ToolCalls.AddRange(toolCalls);
                reply.FinishReason = FinishReasonOf(completion);
                reply.Arm = arm;
                reply.Simulated = model.Provider.Simulated;
                reply.TokensIn = tokensIn;
                reply.TokensOut = tokensOut;
                reply.CostUsd = cost;
                reply.ReferenceCostUsd = models.Max(m => CostOf(m.Definition, tokensIn, tokensOut));
                reply.ReportedQuality = completion.ReportedQuality ?? -1;
                GatewayTelemetry.Succeeded(attempt, system, arm, tokensIn, tokensOut, reply.CostUsd, timeProvider.GetElapsedTime(attemptStarted));
                return;
            }
            catch (BrokenCircuitException)
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "circuit open" });
                otherFailures++;
            }
            catch (RateLimiterRejectedException)
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "too many calls in flight" });
                otherFailures++;
            }
            catch (ProviderException e)
            {
                logger.LogWarning("Provider {Provider}/{Model} failed: {Error}", arm.Provider, arm.Model, e.Message);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "failed", Error = e.Message, LatencyMs = ElapsedMs(attemptStarted) });
                GatewayTelemetry.Failed(attempt, system, arm, e.Failure.ToString().ToLowerInvariant(), timeProvider.GetElapsedTime(attemptStarted));
                if (call.AnythingSent)
                {
                    // Text already reached the caller: another candidate would start a second reply.
                    reply.Arm = arm;
                    reply.Simulated = model.Provider.Simulated;
                    reply.StreamError = $"{arm.Provider}/{arm.Model} broke after {call.SentText.Length} characters were sent: {e.Message}";
                    return;
                }

                switch (e.Failure)
                {
                    case ProviderFailure.Caller:
                        reply.CallerError = CallerErrorOf(e, arm);
                        return;
                    case ProviderFailure.ContextTooLong:
                        contextRefusal = e;
                        largestWindowRefused = Math.Max(largestWindowRefused, model.Definition.ContextWindow);
                        break;
                    default:
                        otherFailures++;
                        break;
                }
            }
            catch (OperationCanceledException) when (!call.CallerToken.IsCancellationRequested)
            {
                // Only the deadline cancels without the caller: it bounds the whole request, so no candidate is left.
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "failed", Error = $"the request deadline of {_deadline.TotalSeconds:0.###} s passed", LatencyMs = ElapsedMs(attemptStarted) });
                GatewayTelemetry.Failed(attempt, system, arm, "deadline", timeProvider.GetElapsedTime(attemptStarted));
                reply.DeadlineExceeded = true;
                return;
            }
            finally
            {
                if (!settled)
                {
                    // What reached the caller before a break or a disconnect was generated and is paid for.
                    await budgets.SettleAsync(
                        reservation,
                        call.AnythingSent ? CostOf(model.Definition, call.InputTokens, tokenCounter.Count(call.SentText.ToString())) : 0,
                        CancellationToken.None);
                }
            }
        }

        // A larger window skipped for the budget could have taken the input: then the budget, not the input, is why nothing answered.
        if (contextRefusal is not null && otherFailures == 0 && overBudget.LargestContextWindow <= largestWindowRefused)
        {
            reply.CallerError = CallerErrorOf(contextRefusal, reply.Attempts.Last(a => a.Outcome == "failed").Arm);
        }
        else if (refusedForTheRequest.Count > 0 && reply.Attempts.All(a => a.Outcome == "skipped") && otherFailures == 0 && overBudget.Count == 0)
        {
            // Nothing failed: no candidate can serve what the request asks for (a capability, a window).
            var contextOnly = reply.Attempts.All(a => a.Error.StartsWith("its input", StringComparison.Ordinal));
            reply.CallerError = new CallerError
            {
                HttpStatus = 400,
                Type = "invalid_request_error",
                Code = contextOnly ? "context_length_exceeded" : "unsupported_capability",
                Param = contextOnly ? "messages" : "model",
                Message = $"no candidate can serve this request: {string.Join("; ", refusedForTheRequest)}",
            };
        }
        else if (overBudget.Count > 0)
        {
            // Every candidate was tried or skipped and none answered: those the budget ruled out were the only
            // ones left that could have, so the budget is what refused the request, whatever failed before them.
            reply.BudgetExhausted = true;
            reply.BudgetMessage = overBudget.MessageFor(request.Agent, reply.Attempts);
            reply.BudgetRetryAfterSeconds = BudgetDay.SecondsUntilNext(timeProvider);
        }
    }

    /// <summary>The candidates skipped because each would have passed the agent's daily budget, for the refusal's message.</summary>
    private sealed class OverBudget
    {
        public const string AttemptError = "over budget";

        private readonly List<string> _costs = [];
        private double _budget;
        private double _committed;

        public int Count => _costs.Count;

        public int LargestContextWindow { get; private set; }

        public void Add(ArmRef arm, int contextWindow, double estimate, double budget, double committed)
        {
            if (_costs.Count == 0)
            {
                _budget = budget;
                _committed = committed;
            }

            _costs.Add(FormattableString.Invariant($"{arm.Provider}/{arm.Model} would cost up to {estimate:0.######} USD"));
            LargestContextWindow = Math.Max(LargestContextWindow, contextWindow);
        }

        /// <summary>The budget and what is spent of it; before it, when other candidates were tried, how each failed.</summary>
        public string MessageFor(string agent, IEnumerable<Attempt> attempts)
        {
            var budget = FormattableString.Invariant($"agent '{agent}' has a daily budget of {_budget:0.######} USD and {_committed:0.######} USD is spent or reserved today");
            var failed = attempts.Where(a => a.Error != AttemptError).Select(a => $"{a.Arm.Provider}/{a.Arm.Model} {a.Outcome}: {a.Error}").ToList();
            return failed.Count == 0
                ? $"{budget}; {_costs[0]}"
                : FormattableString.Invariant($"cheaper providers failed: {string.Join("; ", failed)}; the rest exceed the daily budget of {_budget:0.######} USD: {budget}; {string.Join("; ", _costs)}");
        }
    }

    /// <summary>Why a model cannot serve the request at all, or null: a capability it lacks, or a window too small.</summary>
    private static string? Unfit(ModelDefinition model, Call call)
    {
        var request = call.Request;
        if (request.Tools.Count > 0 && !model.Has("tools"))
        {
            return "lacks the tools capability";
        }

        if (FormatOf(request) == ReplyFormat.Json && !model.Has("json"))
        {
            return "lacks the json capability";
        }

        // A conversation that ends with the assistant asks the model to continue it; a model that cannot would
        // answer anew or refuse, so only models that accept it get it (the gateway itself never prefills).
        if (request.Messages.Count > 0 && request.Messages[^1].Role == "assistant" && !model.Has("prefill"))
        {
            return "does not accept a conversation that ends with an assistant message (prefill capability)";
        }

        return call.InputTokens > model.ContextWindow
            ? FormattableString.Invariant($"its input of {call.InputTokens} tokens is over the context window of {model.ContextWindow}")
            : null;
    }

    /// <summary>
    /// One attempt on one candidate, inside its provider's pipeline (so a retry is a new attempt with fresh limits).
    /// A non-streamed call is bounded by its provider's timeout; a streamed one by the model's first-token limit,
    /// then by its stall limit between pieces. Either limit fails over at once: a provider that went silent is
    /// not asked again within the same request.
    /// </summary>
    private async Task<ProviderCompletion> AttemptAsync(ActiveModel model, Call call, CancellationToken token)
    {
        using var timer = new CancellationTokenSource(Timeout.InfiniteTimeSpan, timeProvider);
        using var limited = CancellationTokenSource.CreateLinkedTokenSource(token, timer.Token);
        var name = $"{model.Provider.Name}/{model.Definition.Name}";
        if (call.OnDelta is null)
        {
            timer.CancelAfter(model.CallTimeout);
            try
            {
                return await model.Provider.CompleteAsync(model.Definition, call.Request.TaskType, call.Messages, call.Options, limited.Token);
            }
            catch (OperationCanceledException) when (timer.IsCancellationRequested && !token.IsCancellationRequested)
            {
                throw new ProviderException(FormattableString.Invariant($"{name} did not answer within {model.CallTimeout.TotalSeconds:0.###} s"), ProviderFailure.Timeout);
            }
        }

        var firstToken = TimeSpan.FromSeconds(model.Definition.FirstTokenSeconds);
        var stall = TimeSpan.FromSeconds(model.Definition.StallSeconds);
        var text = new StringBuilder();
        var toolCalls = new List<FunctionCallContent>();
        var received = false;
        ProviderChunk? last = null;
        timer.CancelAfter(firstToken);
        try
        {
            await foreach (var chunk in model.Provider.StreamAsync(model.Definition, call.Request.TaskType, call.Messages, call.Options, limited.Token).WithCancellation(limited.Token))
            {
                received = true;
                // The caller's own pace is not the provider's: the limit waits while a piece is handed over.
                timer.CancelAfter(Timeout.InfiniteTimeSpan);
                if (chunk.TextDelta.Length > 0)
                {
                    text.Append(chunk.TextDelta);
                    if (!call.Buffered)
                    {
                        await call.SendAsync(model, new GatewayDelta { Text = chunk.TextDelta }, token);
                    }
                }

                if (chunk.ToolCall is { } toolCall)
                {
                    toolCalls.Add(toolCall);
                    if (!call.Buffered)
                    {
                        await call.SendAsync(model, new GatewayDelta { ToolCall = GatewayChatOptions.ToToolCall(toolCall), ToolCallIndex = call.ToolCallsSent }, token);
                    }
                }

                last = chunk.IsLast ? chunk : last;
                timer.CancelAfter(stall);
            }
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !token.IsCancellationRequested)
        {
            var what = received
                ? FormattableString.Invariant($"{name} stalled: nothing for {stall.TotalSeconds:0.###} s")
                : FormattableString.Invariant($"{name} sent no first token within {firstToken.TotalSeconds:0.###} s");
            throw new ProviderException(what, call.AnythingSent ? ProviderFailure.Provider : ProviderFailure.Timeout);
        }
        catch (ProviderException e) when (call.AnythingSent && e.Retryable)
        {
            // Once something went out a retry would send the caller a second beginning.
            throw new ProviderException(e.Message, ProviderFailure.Provider, e);
        }

        if (last is null)
        {
            throw new ProviderException($"{name} ended its stream without finishing it", call.AnythingSent ? ProviderFailure.Provider : ProviderFailure.Transient);
        }

        return new ProviderCompletion(text.ToString(), last.InputTokens, last.OutputTokens, last.ReportedQuality, last.CachedInputTokens, toolCalls, last.FinishReason);
    }

    /// <summary>The tokenizer's count of what the model wrote, when the provider did not report it: text and tool calls.</summary>
    private int OutputTokensOf(string text, List<ToolCall> toolCalls) =>
        tokenCounter.Count(text) + toolCalls.Sum(c => tokenCounter.Count(c.ArgumentsJson) + tokenCounter.Count(c.Name));

    private static string FinishReasonOf(ProviderCompletion completion) =>
        completion.FinishReason == ChatFinishReason.Length ? "length"
        : completion.FinishReason == ChatFinishReason.ContentFilter ? "content_filter"
        : completion.ToolCalls is { Count: > 0 } || completion.FinishReason == ChatFinishReason.ToolCalls ? "tool_calls"
        : "stop";

    private static CallerError CallerErrorOf(ProviderException e, ArmRef arm)
    {
        var refusal = e.Refusal ?? new ProviderRefusal(400, null, null, null, null);
        return new CallerError
        {
            HttpStatus = refusal.Status,
            Type = refusal.Type ?? "invalid_request_error",
            Code = refusal.Code ?? (e.Failure == ProviderFailure.ContextTooLong ? "context_length_exceeded" : ""),
            Param = refusal.Param ?? "",
            // The provider's words about the caller's own request; capped, as they are not ours.
            Message = $"{arm.Provider}/{arm.Model} refused the request: {Truncate(refusal.Message ?? e.Message, 500)}",
            Arm = arm,
        };
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : string.Concat(text.AsSpan(0, length), "…");

    /// <summary>One request on its way through the candidates: what every attempt reads, and what reached the caller.</summary>
    private sealed class Call(
        GatewayRequest request,
        List<AiChatMessage> messages,
        ChatOptions options,
        Func<GatewayDelta, CancellationToken, ValueTask>? onDelta,
        CancellationTokenSource deadline,
        CancellationToken callerToken)
    {
        public GatewayRequest Request { get; } = request;

        public List<AiChatMessage> Messages { get; } = messages;

        public ChatOptions Options { get; } = options;

        public Func<GatewayDelta, CancellationToken, ValueTask>? OnDelta { get; } = onDelta;

        public CancellationToken CallerToken { get; } = callerToken;

        public int InputTokens { get; set; }

        /// <summary>A streamed reply asked for as JSON is held back until it is checked, then sent whole.</summary>
        public bool Buffered { get; } = onDelta is not null && FormatOf(request) == ReplyFormat.Json;

        public StringBuilder SentText { get; } = new();

        public int ToolCallsSent { get; private set; }

        public bool AnythingSent { get; private set; }

        /// <summary>Hands a piece to the caller; the first names the arm and ends the deadline's hold.</summary>
        public async ValueTask SendAsync(ActiveModel model, GatewayDelta delta, CancellationToken cancellationToken)
        {
            if (OnDelta is null || (delta.Text.Length == 0 && delta.ToolCall is null))
            {
                return;
            }

            if (!AnythingSent)
            {
                deadline.CancelAfter(Timeout.InfiniteTimeSpan);
                delta.Arm = new ArmRef { Provider = model.Provider.Name, Model = model.Definition.Name };
                delta.Simulated = model.Provider.Simulated;
                AnythingSent = true;
            }

            SentText.Append(delta.Text);
            ToolCallsSent += delta.ToolCall is null ? 0 : 1;
            await OnDelta(delta, cancellationToken);
        }
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

    public async Task<BudgetState> GetBudgetAsync(BudgetRequest request, CancellationToken cancellationToken)
    {
        var state = new BudgetState { ReservedOutputTokens = budgets.ReservedOutputTokens, RetryAfterSeconds = BudgetDay.SecondsUntilNext(timeProvider) };
        if (budgets.DailyBudget(request.Agent) is { } daily)
        {
            var committed = await budgets.CommittedTodayAsync(request.Tenant, request.Agent, cancellationToken);
            state.HasBudget = true;
            state.DailyUsd = daily;
            state.CommittedUsd = committed;
            state.RemainingUsd = Math.Max(0, daily - committed);
        }

        return state;
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
}
