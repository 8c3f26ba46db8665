using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using PersistentAgents.Agents.OpenAi;
using PersistentAgents.Contracts;

namespace PersistentAgents.Agents.Rest;

/// <summary>
/// The error body JSON transcoding writes for a failed call (<c>{"code", "message", "details"}</c>), for the
/// REST answers made outside it: bad bodies, streamed completes, authentication and rate limits.
/// </summary>
public static class RestError
{
    public static int HttpStatusOf(StatusCode code) => code switch
    {
        StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.OutOfRange => StatusCodes.Status400BadRequest,
        StatusCode.Unauthenticated => StatusCodes.Status401Unauthorized,
        StatusCode.PermissionDenied => StatusCodes.Status403Forbidden,
        StatusCode.NotFound => StatusCodes.Status404NotFound,
        StatusCode.AlreadyExists or StatusCode.Aborted => StatusCodes.Status409Conflict,
        StatusCode.ResourceExhausted => StatusCodes.Status429TooManyRequests,
        StatusCode.Unavailable => StatusCodes.Status503ServiceUnavailable,
        StatusCode.DeadlineExceeded => StatusCodes.Status504GatewayTimeout,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static string Json(StatusCode code, string message) =>
        JsonSerializer.Serialize(new { code = (int)code, message, details = Array.Empty<object>() });

    public static Task WriteAsync(HttpContext context, StatusCode code, string message, int? httpStatus = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.StatusCode = httpStatus ?? HttpStatusOf(code);
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(Json(code, message), context.RequestAborted);
    }

    /// <summary>A refused call as the JSON error, with a budget refusal's seconds to wait as <c>Retry-After</c>.</summary>
    public static Task WriteAsync(HttpContext context, RpcException e)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(e);
        SetRetryAfter(context.Response, e);
        return WriteAsync(context, e.StatusCode, e.Status.Detail);
    }

    /// <summary>Copies a refusal's <c>retry-after</c> trailer (a budget's seconds until its day ends) to the HTTP header of that name.</summary>
    public static void SetRetryAfter(HttpResponse response, RpcException e)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(e);
        if (BudgetDay.RetryAfterOf(e) is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// Refuses a call before it reaches a service (authentication, rate limits): a trailers-only answer
    /// with the status for a gRPC caller, which would read a bare HTTP status only as "unknown", an OpenAI
    /// error object on the OpenAI-compatible routes, else the JSON error.
    /// </summary>
    public static Task RefuseAsync(HttpContext context, StatusCode code, string message)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Request.Path.StartsWithSegments("/v1"))
        {
            // OpenAI clients read OpenAI error objects: the OpenAI-compatible routes answer every refusal as one.
            return OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Of(code, message));
        }

        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) != true)
        {
            return WriteAsync(context, code, message);
        }

        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString(message);
        return Task.CompletedTask;
    }
}
