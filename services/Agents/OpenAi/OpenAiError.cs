using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// An answer of the OpenAI-compatible API that is not a completion, in OpenAI's shape
/// (<c>{"error": {"message", "type", "param", "code"}}</c>) with the HTTP status it goes out with: the
/// endpoint's own refusals, the gateway's outcomes and a provider's refusal of the caller's request.
/// </summary>
internal readonly record struct OpenAiError(int Status, string Message, string Type, string? Param, string? Code)
{
    /// <summary>Seconds the caller should wait before trying again (the <c>Retry-After</c> header); null: none said.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static OpenAiError Invalid(string? param, string message, string code) =>
        new(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, code);

    public static OpenAiError TooLarge(long bytes, int limit) => new(StatusCodes.Status413PayloadTooLarge,
        string.Create(CultureInfo.InvariantCulture, $"body: is {bytes} bytes, the limit is {limit}"), "invalid_request_error", null, "request_too_large");

    /// <summary>The Responses API is not served: one protocol, chat completions, carries every model and agent.</summary>
    public static OpenAiError ResponsesUnsupported() => new(StatusCodes.Status404NotFound,
        "/v1/responses is not supported by this server; use POST /v1/chat/completions, which serves the same models and agents (model \"agent/<name>\")",
        "invalid_request_error", null, "unsupported_endpoint");

    public static OpenAiError UnknownEndpoint(string method, string path) => new(StatusCodes.Status404NotFound,
        $"{method} {path} is not an endpoint of this server; it serves POST /v1/chat/completions and GET /v1/models",
        "invalid_request_error", null, "unsupported_endpoint");

    public static OpenAiError BudgetExceeded(string message) =>
        new(StatusCodes.Status429TooManyRequests, message, "insufficient_quota", null, "budget_exceeded");

    /// <summary>A reply that broke after part of it was streamed: the in-band error that ends the stream.</summary>
    public static OpenAiError StreamInterrupted(string message) =>
        new(StatusCodes.Status502BadGateway, message, "server_error", null, "stream_interrupted");

    /// <summary>
    /// An unsuccessful gateway reply: the provider's own refusal of the request as the provider gave it; the
    /// agent's budget; the whole-request deadline; else every candidate failed, each attempt named.
    /// </summary>
    public static OpenAiError Of(GatewayReply reply)
    {
        if (reply.CallerError is { HttpStatus: > 0 } refused)
        {
            return new(refused.HttpStatus, refused.Message, refused.Type.Length > 0 ? refused.Type : "invalid_request_error",
                refused.Param.Length > 0 ? refused.Param : null, refused.Code.Length > 0 ? refused.Code : null);
        }

        if (reply.BudgetExhausted)
        {
            return BudgetExceeded($"budget: {reply.BudgetMessage}") with { RetryAfterSeconds = reply.BudgetRetryAfterSeconds };
        }

        var tried = reply.Attempts.Count == 0
            ? "no candidate was tried"
            : string.Join("; ", reply.Attempts.Select(a => $"{a.Arm.Provider}/{a.Arm.Model} {a.Outcome}: {a.Error}"));
        if (reply.DeadlineExceeded)
        {
            return new(StatusCodes.Status504GatewayTimeout, $"the request deadline passed before any candidate answered: {tried}", "server_error", null, "timeout");
        }

        if (reply.StreamError.Length > 0)
        {
            return StreamInterrupted($"stream: {reply.StreamError}");
        }

        return new(StatusCodes.Status503ServiceUnavailable, $"every candidate failed: {tried}", "server_error", null, "all_candidates_failed");
    }

    /// <summary>
    /// A refusal that came as a gRPC status: the gateway's in distributed mode, an agent turn's in both.
    /// </summary>
    public static OpenAiError Of(RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Of(e.StatusCode, e.Status.Detail) with { RetryAfterSeconds = BudgetDay.RetryAfterOf(e) };
    }

    /// <summary>A refusal by status and message; the field a bad request's message starts with (<c>"prompt: ..."</c>) is its param.</summary>
    public static OpenAiError Of(StatusCode code, string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var colon = message.IndexOf(':', StringComparison.Ordinal);
        var field = colon > 0 && !message.AsSpan(0, colon).Contains(' ') ? message[..colon] : null;
        return code switch
        {
            StatusCode.InvalidArgument or StatusCode.OutOfRange => Invalid(field, message, "invalid_value"),
            StatusCode.FailedPrecondition => Invalid(field, message, "failed_precondition"),
            StatusCode.ResourceExhausted when field == "budget" => BudgetExceeded(message),
            StatusCode.ResourceExhausted => new(StatusCodes.Status429TooManyRequests, message, "rate_limit_error", null, "rate_limit_exceeded"),
            StatusCode.PermissionDenied => new(StatusCodes.Status403Forbidden, message, "permission_error", null, "permission_denied"),
            StatusCode.Unauthenticated => new(StatusCodes.Status401Unauthorized, message, "authentication_error", null, "invalid_api_key"),
            StatusCode.NotFound => new(StatusCodes.Status404NotFound, message, "invalid_request_error", field, "not_found"),
            StatusCode.DeadlineExceeded => new(StatusCodes.Status504GatewayTimeout, message, "server_error", null, "timeout"),
            StatusCode.Unavailable when field == "stream" => StreamInterrupted(message),
            StatusCode.Unavailable => new(StatusCodes.Status503ServiceUnavailable, message, "server_error", null,
                message.StartsWith("every provider failed", StringComparison.Ordinal) ? "all_candidates_failed" : "unavailable"),
            _ => new(StatusCodes.Status500InternalServerError, message, "server_error", null, "internal_error"),
        };
    }

    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteStartObject("error"u8);
        writer.WriteString("message"u8, Message);
        writer.WriteString("type"u8, Type);
        if (Param is null)
        {
            writer.WriteNull("param"u8);
        }
        else
        {
            writer.WriteString("param"u8, Param);
        }

        if (Code is null)
        {
            writer.WriteNull("code"u8);
        }
        else
        {
            writer.WriteString("code"u8, Code);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
