using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;
using PersistentAgents.Gateway.Providers;

namespace PersistentAgents.Gateway;

/// <summary>Settings of the per-provider resilience pipeline.</summary>
public sealed class ResilienceOptions
{
    /// <summary>Share of failed calls within the sampling window that opens a provider's circuit.</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Calls within the window before the circuit may open at all.</summary>
    public int MinimumThroughput { get; set; } = 4;

    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit rejects calls before a half-open probe is let through.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// One Polly pipeline per provider: a timeout inside a circuit breaker, so a hanging provider counts as a
/// failing one and a sick provider is skipped until a half-open probe finds it healthy.
/// </summary>
public sealed class ProviderResilience
{
    private readonly Dictionary<string, (ResiliencePipeline Pipeline, CircuitBreakerStateProvider Circuit)> _byProvider;

    public ProviderResilience(IEnumerable<(string Provider, TimeSpan Timeout)> providers, ResilienceOptions options, ILogger<ProviderResilience> logger)
    {
        _byProvider = new(StringComparer.Ordinal);
        foreach (var (provider, timeout) in providers)
        {
            var circuit = new CircuitBreakerStateProvider();
            var pipeline = new ResiliencePipelineBuilder()
                .AddCircuitBreaker(new CircuitBreakerStrategyOptions
                {
                    FailureRatio = options.FailureRatio,
                    MinimumThroughput = options.MinimumThroughput,
                    SamplingDuration = options.SamplingDuration,
                    BreakDuration = options.BreakDuration,
                    StateProvider = circuit,
                    ShouldHandle = new PredicateBuilder()
                        .Handle<ProviderException>()
                        .Handle<TimeoutRejectedException>()
                        .Handle<HttpRequestException>(),
                    OnOpened = args =>
                    {
                        logger.LogWarning("Circuit of provider {Provider} opened for {BreakDuration}", provider, args.BreakDuration);
                        return ValueTask.CompletedTask;
                    },
                    OnClosed = _ =>
                    {
                        logger.LogInformation("Circuit of provider {Provider} closed", provider);
                        return ValueTask.CompletedTask;
                    },
                })
                .AddTimeout(timeout)
                .Build();
            _byProvider[provider] = (pipeline, circuit);
        }
    }

    public ResiliencePipeline PipelineFor(string provider) => _byProvider[provider].Pipeline;

    /// <summary>"closed", "open", "half-open" or "isolated".</summary>
    public string CircuitStateOf(string provider) => _byProvider[provider].Circuit.CircuitState switch
    {
        CircuitState.Closed => "closed",
        CircuitState.Open => "open",
        CircuitState.HalfOpen => "half-open",
        _ => "isolated",
    };

    public bool IsAcceptingCalls(string provider) =>
        _byProvider[provider].Circuit.CircuitState is CircuitState.Closed or CircuitState.HalfOpen;
}
