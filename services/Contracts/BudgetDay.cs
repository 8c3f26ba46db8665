using System.Globalization;
using Grpc.Core;

namespace PersistentAgents.Contracts;

/// <summary>
/// Daily budgets run over the UTC day, so a turn refused for its budget can be taken again when the next UTC
/// day starts: every route tells the caller how long that is (HTTP <c>Retry-After</c>, a gRPC
/// <c>retry-after</c> trailer), in whole seconds.
/// </summary>
public static class BudgetDay
{
    /// <summary>The gRPC trailer that carries the seconds, as HTTP's header of the same meaning is named.</summary>
    public const string RetryAfterKey = "retry-after";

    /// <summary>Whole seconds from now to the next UTC midnight, rounded up so that a retry never comes early; at least 1.</summary>
    public static int SecondsUntilNext(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        var now = time.GetUtcNow();
        var nextDay = new DateTimeOffset(now.UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
        return Math.Max(1, (int)Math.Ceiling((nextDay - now).TotalSeconds));
    }

    /// <summary>A budget refusal: RESOURCE_EXHAUSTED with the message, and the seconds as its <c>retry-after</c> trailer.</summary>
    public static RpcException Refusal(string message, int retryAfterSeconds) =>
        new(new Status(StatusCode.ResourceExhausted, message), new Metadata { { RetryAfterKey, retryAfterSeconds.ToString(CultureInfo.InvariantCulture) } });

    /// <summary>The seconds of a refusal's <c>retry-after</c> trailer, or null when it has none.</summary>
    public static int? RetryAfterOf(RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e.Trailers.GetValue(RetryAfterKey) is { } value && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? seconds : null;
    }
}
