using System.Globalization;
using System.Net.Http.Headers;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// What the HTTP layer saw of one provider call: the status and Retry-After of the last response. The SDKs do not
/// all expose response headers on their exceptions (Anthropic's do not), so the handler below records them here,
/// in a box the calling flow owns (an <see cref="AsyncLocal{T}"/> holding a mutable object flows down into the
/// SDK's awaits, and each call has its own box).
/// </summary>
internal sealed class ProviderHttpCall
{
    private static readonly AsyncLocal<ProviderHttpCall?> s_current = new();

    public int? Status { get; private set; }

    public TimeSpan? RetryAfter { get; private set; }

    internal static ProviderHttpCall? Current => s_current.Value;

    /// <summary>Starts recording for the calling flow.</summary>
    public static ProviderHttpCall Begin()
    {
        var call = new ProviderHttpCall();
        s_current.Value = call;
        return call;
    }

    /// <summary>Records for the calling flow again (an async iterator runs each step in its caller's context).</summary>
    public void Resume() => s_current.Value = this;

    internal void Record(HttpResponseMessage response, DateTimeOffset now)
    {
        Status = (int)response.StatusCode;
        RetryAfter = response.IsSuccessStatusCode ? null : RetryAfterHeader.Parse(response.Headers, now);
    }
}

/// <summary>Records each response's status and Retry-After into the flow's <see cref="ProviderHttpCall"/>.</summary>
internal sealed class ProviderResponseRecorder(TimeProvider timeProvider) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        ProviderHttpCall.Current?.Record(response, timeProvider.GetUtcNow());
        return response;
    }
}

internal static class ProviderHttp
{
    /// <summary>
    /// The HttpClient a provider's SDK sends through: no overall timeout of its own (the SDK's and the gateway's
    /// timeouts rule), pooled connections renewed every few minutes so DNS changes are seen.
    /// </summary>
    public static HttpClient CreateClient(TimeProvider? timeProvider = null)
    {
#pragma warning disable CA2000 // the HttpClient owns and disposes the handler chain
        var handler = new ProviderResponseRecorder(timeProvider ?? TimeProvider.System)
        {
            InnerHandler = new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                ConnectTimeout = TimeSpan.FromSeconds(15),
            },
        };
#pragma warning restore CA2000
        return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }
}

internal static class RetryAfterHeader
{
    /// <summary>
    /// How long the provider asked to wait: <c>retry-after-ms</c> (OpenAI's precise form) or <c>Retry-After</c> in
    /// seconds or as an HTTP date (a date in the past means now). Null when neither is there or readable.
    /// </summary>
    public static TimeSpan? Parse(HttpResponseHeaders headers, DateTimeOffset now)
    {
        if (headers.TryGetValues("retry-after-ms", out var milliseconds)
            && double.TryParse(milliseconds.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)
            && ms >= 0 && ms < TimeSpan.MaxValue.TotalMilliseconds)
        {
            return TimeSpan.FromMilliseconds(ms);
        }

        if (!headers.TryGetValues("Retry-After", out var values))
        {
            return null;
        }

        var value = values.FirstOrDefault()?.Trim();
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        // Some servers send fractional seconds, which RetryConditionHeaderValue refuses.
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            return seconds >= 0 && seconds < TimeSpan.MaxValue.TotalSeconds ? TimeSpan.FromSeconds(seconds) : null;
        }

        if (DateTimeOffset.TryParseExact(value, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            || DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out date))
        {
            var wait = date - now;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }
}
