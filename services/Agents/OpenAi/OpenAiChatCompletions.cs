using System.Globalization;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// <c>POST /v1/chat/completions</c>: a catalog model (or <c>auto</c>) is one gateway call, streamed or not;
/// <c>agent/&lt;name&gt;</c> is a turn of that persistent agent (<see cref="OpenAiAgentTurns"/>). Every
/// refusal and failure is an OpenAI error object with its status; a stream that broke after it started ends
/// with an in-band error event instead.
/// </summary>
internal sealed class OpenAiChatCompletions(Func<IGatewayApi> gateway, OpenAiModels models, OpenAiAgentTurns agents, TimeProvider time)
{
    public async Task HandleAsync(HttpContext context)
    {
        var request = new OpenAiChatRequest();
        if (await OpenAiChatRequestReader.ReadAsync(context, request) is { } invalid)
        {
            await OpenAiJson.SendErrorAsync(context.Response, invalid);
            return;
        }

        if (request.AgentName is { } agent)
        {
            await agents.HandleAsync(context, request, agent);
            return;
        }

        try
        {
            if (!await models.TryResolveAsync(request.Model, request.Gateway.Candidates, context.RequestAborted))
            {
                await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Invalid("model",
                    $"model: {ErrorText.Quote(request.Model)} is not in the catalog; use \"provider/model\" or a model name from GET /v1/models, \"auto\", or \"agent/<name>\"",
                    "model_not_found"));
                return;
            }

            if (request.Stream)
            {
                await StreamAsync(context, request);
            }
            else
            {
                await CompleteAsync(context, request);
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away: the upstream call was cancelled with it, and nobody is left to answer.
        }
        catch (RpcException e) when (!context.Response.HasStarted)
        {
            await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Of(e));
        }
    }

    private async Task CompleteAsync(HttpContext context, OpenAiChatRequest request)
    {
        var reply = await gateway().CompleteAsync(request.Gateway, context.RequestAborted);
        if (!reply.Success)
        {
            await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Of(reply));
            return;
        }

        var headers = context.Response.Headers;
        headers["x-pa-provider"] = reply.Arm.Provider;
        headers["x-pa-cost-usd"] = reply.CostUsd.ToString(CultureInfo.InvariantCulture);
        headers["x-pa-cache-hit"] = reply.CacheHit ? "true" : "false";
        headers["x-pa-simulated"] = reply.Simulated ? "true" : "false";
        await OpenAiChatReplyWriter.SendCompletionAsync(context.Response, ReplyOf(reply), time.GetUtcNow().ToUnixTimeSeconds());
    }

    /// <summary>
    /// Nothing goes out until the first delta, which names the arm: until then the gateway may still fall
    /// back, and a failure is an ordinary error response.
    /// </summary>
    private async Task StreamAsync(HttpContext context, OpenAiChatRequest request)
    {
        var stream = new OpenAiChunkStream(context.Response, time.GetUtcNow().ToUnixTimeSeconds(), request.IncludeUsage);
        GatewayReply reply;
        try
        {
            reply = await gateway().CompleteStreamingAsync(
                request.Gateway,
                async (delta, token) =>
                {
                    if (!stream.Started)
                    {
                        var arm = delta.Arm ?? new ArmRef();
                        await stream.StartAsync(ModelOf(arm), arm, delta.Simulated, delta.CacheHit, token);
                    }

                    if (delta.ToolCall is { } call)
                    {
                        await stream.SendToolCallAsync(delta.ToolCallIndex, call, token);
                    }
                    else if (delta.Text.Length > 0)
                    {
                        await stream.SendTextAsync(delta.Text, token);
                    }
                },
                context.RequestAborted);
        }
        catch (RpcException e) when (stream.Started)
        {
            await stream.FailAsync(OpenAiError.StreamInterrupted(e.Status.Detail), context.RequestAborted);
            return;
        }

        if (!reply.Success || reply.StreamError.Length > 0)
        {
            if (stream.Started)
            {
                await stream.FailAsync(OpenAiError.Of(reply), context.RequestAborted);
            }
            else
            {
                await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Of(reply));
            }

            return;
        }

        if (!stream.Started)
        {
            await stream.StartAsync(ModelOf(reply.Arm), reply.Arm, reply.Simulated, reply.CacheHit, context.RequestAborted);
        }

        // A gateway that could not stream (it answered whole) handed over less than its reply: send the rest.
        if (!stream.SentText && reply.Text.Length > 0)
        {
            await stream.SendTextAsync(reply.Text, context.RequestAborted);
        }

        for (var i = stream.SentToolCalls; i < reply.ToolCalls.Count; i++)
        {
            await stream.SendToolCallAsync(i, reply.ToolCalls[i], context.RequestAborted);
        }

        await stream.FinishAsync(
            OpenAiChatReplyWriter.FinishReasonOf(reply.FinishReason, reply.ToolCalls.Count), new OpenAiUsage(reply.TokensIn, reply.TokensOut, reply.CostUsd), context.RequestAborted);
    }

    private static OpenAiChatReply ReplyOf(GatewayReply reply) => new(
        ModelOf(reply.Arm), reply.Text, reply.ToolCalls, OpenAiChatReplyWriter.FinishReasonOf(reply.FinishReason, reply.ToolCalls.Count),
        new OpenAiUsage(reply.TokensIn, reply.TokensOut, reply.CostUsd));

    private static string ModelOf(ArmRef arm) => $"{arm.Provider}/{arm.Model}";
}
