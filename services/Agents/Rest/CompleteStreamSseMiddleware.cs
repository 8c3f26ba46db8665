using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Rest;

/// <summary>
/// <c>POST /platform/agents/{agent}/complete?stream=true</c> as Server-Sent Events: <c>delta</c> events with
/// the text as it is generated, then one <c>done</c> event with the complete reply (usage and cost), or an
/// <c>error</c> event when the stream broke after text was sent. An error before any text is an ordinary
/// JSON error with its status code. JSON transcoding has no SSE, so this one route is served here, with the
/// same request message, validation and invoker as the gRPC <c>CompleteStream</c>.
/// </summary>
public sealed partial class CompleteStreamSseMiddleware(RequestDelegate next, IAgentInvoker invoker, IOptions<AgentLimits> limits)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var match = HttpMethods.IsPost(context.Request.Method) && context.Request.Query["stream"] == "true"
            ? CompletePath().Match(context.Request.Path.Value ?? "")
            : Match.Empty;
        if (!match.Success)
        {
            await next(context);
            return;
        }

        // Served ahead of routing, so the authorization that endpoints get is done here: a tenant, or the challenge.
        if (Tenancy.Of(context.User) is not { } tenant)
        {
            await context.ChallengeAsync();
            return;
        }

        CompleteRequest request;
        try
        {
            request = await ReadRequestAsync(context, match.Groups["agent"].Value);
        }
        catch (RpcException e)
        {
            await RestError.WriteAsync(context, e);
            return;
        }

        var started = false;
        async ValueTask StartAsync(CancellationToken token)
        {
            if (!started)
            {
                started = true;
                context.Response.StatusCode = StatusCodes.Status200OK;
                context.Response.ContentType = "text/event-stream";
                context.Response.Headers.CacheControl = "no-cache";
                await context.Response.Body.FlushAsync(token);
            }
        }

        try
        {
            var valid = CompleteRequestValidator.Validate(request, limits.Value);
            var reply = await invoker.CompleteAsync(
                new AgentId(tenant, request.Agent),
                valid,
                async (delta, token) =>
                {
                    await StartAsync(token);
                    await WriteEventAsync(context, "delta", JsonSerializer.Serialize(new { text = delta }), token);
                },
                context.RequestAborted);
            await StartAsync(context.RequestAborted);
            await WriteEventAsync(context, "done", JsonFormatter.Default.Format(reply), context.RequestAborted);
        }
        catch (RpcException e) when (!started)
        {
            await RestError.WriteAsync(context, e);
        }
        catch (RpcException e)
        {
            await WriteEventAsync(context, "error", ErrorJson(e.Status), context.RequestAborted);
        }
    }

    private static async Task<CompleteRequest> ReadRequestAsync(HttpContext context, string agent)
    {
        string body;
        using (var reader = new StreamReader(context.Request.Body))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            if (RequestShapeMiddleware.ShapeProblem(document.RootElement, CompleteRequest.Descriptor, "") is { } problem)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
            }
        }
        catch (JsonException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"body: is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})"));
        }

        try
        {
            var request = JsonParser.Default.Parse<CompleteRequest>(body);
            request.Agent = agent;
            return request;
        }
        catch (Exception e) when (e is InvalidJsonException or InvalidProtocolBufferException or FormatException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"body: is not a CompleteRequest ({e.Message})"));
        }
    }

    private static async Task WriteEventAsync(HttpContext context, string name, string json, CancellationToken cancellationToken)
    {
        await context.Response.WriteAsync($"event: {name}\ndata: {json}\n\n", cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }

    private static string ErrorJson(Status status) => RestError.Json(status.StatusCode, status.Detail);

    [GeneratedRegex("^/platform/agents/(?<agent>[^/]+)/complete$")]
    private static partial Regex CompletePath();
}
