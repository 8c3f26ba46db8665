using System.Collections.Concurrent;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.RateLimiting;
using Polly.Retry;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway.Providers;

namespace PersistentAgents.Gateway;

/// <summary>Settings of the per-provider resilience pipeline.</summary>
public sealed class ResilienceOptions
{
    /// <summary>
    /// Retries of a transient failure (429, 5xx, a broken connection) on the same provider. A timeout is never
    /// retried there: a provider that went silent once is likely to again, and the next candidate is tried.
    /// </summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>First retry delay; later ones double, with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>A Retry-After longer than this is not waited for: the next candidate is tried instead.</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Share of failed calls within the sampling window that opens a provider's circuit.</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Calls within the window before the circuit may open at all.</summary>
    public int MinimumThroughput { get; set; } = 4;

    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit rejects calls before a half-open probe is let through.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Calls in flight to one provider; more wait in a queue of the same size, then are refused.</summary>
    public int MaxConcurrency { get; set; } = 64;

    /// <summary>
    /// How long a request may wait for the first byte of its reply, over all candidates together (for a
    /// non-streamed reply, the whole reply). Below the Dapr call deadlines, so the caller hears why.
    /// </summary>
    public TimeSpan RequestDeadline { get; set; } = TimeSpan.FromSeconds(45);
}

/// <summary>
/// One Polly pipeline per provider, outermost first: a concurrency limit, retries with jittered backoff
/// for transient failures only (honouring a 429's Retry-After), and a circuit breaker with half-open probes
/// that counts the provider's failures and silences (the gateway's per-attempt limits throw inside it) but not
/// the caller's refused requests. Circuit changes are logged and published on <c>provider-health</c>.
/// </summary>
public sealed class ProviderResilience
{
    private readonly Dictionary<string, (ResiliencePipeline Pipeline, CircuitBreakerStateProvider Circuit)> _byProvider;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _probeDueAt = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _probing = new(StringComparer.Ordinal);
    private readonly TimeProvider _timeProvider;

    public ProviderResilience(
        IEnumerable<string> providers,
        ResilienceOptions options,
        IEventPublisher events,
        TimeProvider timeProvider,
        ILogger<ProviderResilience> logger)
    {
        _byProvider = new(StringComparer.Ordinal);
        _timeProvider = timeProvider;
        foreach (var provider in providers)
        {
            var circuit = new CircuitBreakerStateProvider();
            async ValueTask Announce(string state, string reason)
            {
                var change = new ProviderHealthChanged { Provider = provider, Circuit = state, At = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow()), Reason = reason };
                await events.PublishAsync(Topics.ProviderHealth, $"{provider}-{state}-{timeProvider.GetTimestamp()}", change, CancellationToken.None);
            }

            var builder = new ResiliencePipelineBuilder { TimeProvider = timeProvider }
                .AddConcurrencyLimiter(options.MaxConcurrency, options.MaxConcurrency);
            if (options.MaxRetries > 0)
            {
                builder.AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = options.MaxRetries,
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = options.RetryBaseDelay,
                    ShouldHandle = new PredicateBuilder()
                        .Handle<ProviderException>(e => e.Retryable && !(e.RetryAfter > options.MaxRetryAfter))
                        .Handle<HttpRequestException>(),
                    DelayGenerator = args => ValueTask.FromResult(
                        args.Outcome.Exception is ProviderException { RetryAfter: { } retryAfter } ? (TimeSpan?)retryAfter : null),
                });
            }

            builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = options.FailureRatio,
                MinimumThroughput = options.MinimumThroughput,
                SamplingDuration = options.SamplingDuration,
                BreakDuration = options.BreakDuration,
                StateProvider = circuit,
                ShouldHandle = new PredicateBuilder()
                    .Handle<ProviderException>(e => e.Failure is not (ProviderFailure.Caller or ProviderFailure.ContextTooLong))
                    .Handle<HttpRequestException>(),
                OnOpened = async args =>
                {
                    var reason = args.Outcome.Exception?.Message ?? "failures";
                    _probeDueAt[provider] = timeProvider.GetUtcNow() + args.BreakDuration;
                    logger.LogWarning("Circuit of provider {Provider} opened for {BreakDuration}: {Reason}", provider, args.BreakDuration, reason);
                    await Announce("open", reason);
                },
                OnHalfOpened = async _ =>
                {
                    logger.LogInformation("Circuit of provider {Provider} half-open: probing", provider);
                    await Announce("half-open", "probe");
                },
                OnClosed = async closed =>
                {
                    _probeDueAt.TryRemove(provider, out var _);
                    logger.LogInformation("Circuit of provider {Provider} closed", provider);
                    await Announce("closed", "recovered");
                },
            });
            _byProvider[provider] = (builder.Build(), circuit);
        }
    }

    public ResiliencePipeline PipelineFor(string provider) => _byProvider[provider].Pipeline;

    /// <summary>
    /// "closed", "open", "half-open" (the break is over: the next call is a probe) or "isolated".
    /// </summary>
    public string CircuitStateOf(string provider) => _byProvider[provider].Circuit.CircuitState switch
    {
        CircuitState.Closed => "closed",
        CircuitState.Open => IsProbeDue(provider) ? "half-open" : "open",
        CircuitState.HalfOpen => "half-open",
        _ => "isolated",
    };

    /// <summary>
    /// Claims the one probe of a provider whose break is over. A circuit leaves its open state only when a
    /// call reaches it, and a provider ranked behind healthy ones would never be called, so the gateway
    /// puts the claimed provider first for one live request. Release the claim when that call is over.
    /// </summary>
    public bool TryClaimProbe(string provider) => IsProbeDue(provider) && _probing.TryAdd(provider, 0);

    public void ReleaseProbe(string provider) => _probing.TryRemove(provider, out _);

    private bool IsProbeDue(string provider) =>
        _byProvider[provider].Circuit.CircuitState == CircuitState.Open
        && _probeDueAt.TryGetValue(provider, out var due) && _timeProvider.GetUtcNow() >= due;
}
