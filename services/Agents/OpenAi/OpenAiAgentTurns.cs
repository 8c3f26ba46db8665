using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// <c>model: "agent/&lt;name&gt;"</c>: a full turn of the caller's tenant's persistent agent (working and
/// semantic memory, learned routing, episode, statistics) instead of a bare gateway call. The turn is the
/// last message, which must be the user's; the agent's own working memory of the session
/// (<c>x-pa-session</c>) holds the conversation before it, so earlier user and assistant messages are not
/// sent again, while system and developer messages go with the turn as its <c>instructions</c> context.
/// </summary>
internal sealed class OpenAiAgentTurns(Func<IAgentInvoker> invoker, Func<AgentLimits> limits, TimeProvider time)
{
    public async Task HandleAsync(HttpContext context, OpenAiChatRequest request, string name)
    {
        var (agent, turn, refusal) = Validate(request, name);
        if (refusal is { } invalid)
        {
            await OpenAiJson.SendErrorAsync(context.Response, invalid);
            return;
        }

        var model = OpenAiChatRequest.AgentModelPrefix + name;
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        try
        {
            if (request.Stream)
            {
                await StreamAsync(context, agent, turn!, model, created, request.IncludeUsage);
                return;
            }

            var reply = await invoker().CompleteAsync(agent, turn!, onDelta: null, context.RequestAborted);
            var headers = context.Response.Headers;
            headers["x-pa-provider"] = reply.Provider;
            headers["x-pa-cost-usd"] = reply.CostUsd.ToString(CultureInfo.InvariantCulture);
            headers["x-pa-cache-hit"] = reply.CacheHit ? "true" : "false";
            headers["x-pa-simulated"] = reply.Simulated ? "true" : "false";
            headers["x-pa-interaction-id"] = reply.InteractionId;
            await OpenAiChatReplyWriter.SendCompletionAsync(context.Response, ReplyOf(model, reply), created);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away: the turn was cancelled with it, and nobody is left to answer.
        }
        catch (RpcException e) when (!context.Response.HasStarted)
        {
            await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Of(e));
        }
    }

    /// <summary>An agent's deltas are text only, with no arm: the x-pa-* headers of the answering model are not known when the stream starts.</summary>
    private async Task StreamAsync(HttpContext context, AgentId agent, ValidCompleteRequest turn, string model, long created, bool includeUsage)
    {
        var stream = new OpenAiChunkStream(context.Response, created, includeUsage);
        CompleteReply reply;
        try
        {
            reply = await invoker().CompleteAsync(
                agent,
                turn,
                async (text, token) =>
                {
                    if (!stream.Started)
                    {
                        await stream.StartAsync(model, arm: null, simulated: false, cacheHit: false, token);
                    }

                    await stream.SendTextAsync(text, token);
                },
                context.RequestAborted);
        }
        catch (RpcException e) when (stream.Started)
        {
            await stream.FailAsync(OpenAiError.StreamInterrupted(e.Status.Detail), context.RequestAborted);
            return;
        }

        if (!stream.Started)
        {
            await stream.StartAsync(model, arm: null, simulated: false, cacheHit: false, context.RequestAborted);
        }

        if (!stream.SentText && reply.Text.Length > 0)
        {
            await stream.SendTextAsync(reply.Text, context.RequestAborted);
        }

        await stream.FinishAsync("stop", new OpenAiUsage(reply.TokensIn, reply.TokensOut, reply.CostUsd), context.RequestAborted);
    }

    /// <summary>
    /// The agent's turn from the request, checked as the agents' own API checks it (names, prompt and context
    /// limits), with each refusal naming the request's field. What a turn cannot do is refused rather than
    /// ignored: tools (an agent turn has no tool loop) and a JSON schema (an agent can be asked for JSON, not
    /// held to a schema).
    /// </summary>
    private (AgentId Agent, ValidCompleteRequest? Turn, OpenAiError? Refusal) Validate(OpenAiChatRequest request, string name)
    {
        var gateway = request.Gateway;
        if (!CompleteRequestValidator.IsValidName(name))
        {
            return (default, null, OpenAiError.Invalid("model",
                $"model: {ErrorText.Quote(name)} is not an agent name; agent/<name> takes 1 to 64 of lowercase letters, digits, '-' and '_', starting with a letter or digit",
                "invalid_value"));
        }

        if (gateway.Tools.Count > 0)
        {
            return (default, null, OpenAiError.Invalid("tools", "tools: an agent model answers in text and calls no tools; leave tools out, or use a catalog model", "unsupported_parameter"));
        }

        if (gateway.JsonSchema.Length > 0)
        {
            return (default, null, OpenAiError.Invalid("response_format",
                "response_format: an agent model takes {\"type\": \"json_object\"}, not a json_schema", "unsupported_value"));
        }

        var last = gateway.Messages.Count - 1;
        var prompt = gateway.Messages[last];
        if (prompt.Role != "user")
        {
            return (default, null, OpenAiError.Invalid(string.Create(CultureInfo.InvariantCulture, $"messages[{last}].role"),
                string.Create(CultureInfo.InvariantCulture, $"messages[{last}].role: the last message of an agent turn must be the user's"), "invalid_value"));
        }

        var complete = new CompleteRequest
        {
            Agent = name,
            Prompt = prompt.Content,
            TaskType = gateway.TaskType,
            SessionId = request.SessionId,
            NoCache = gateway.NoCache,
            ResponseFormat = gateway.ResponseFormat == "json" ? "json" : "text",
        };
        var instructions = string.Join("\n\n", gateway.Messages.Where(m => m.Role == "system").Select(m => m.Content));
        if (instructions.Length > 0)
        {
            complete.Context = new Struct { Fields = { ["instructions"] = Value.ForString(instructions) } };
        }

        try
        {
            return (new AgentId(gateway.Tenant, name), CompleteRequestValidator.Validate(complete, limits()), null);
        }
        catch (RpcException e)
        {
            // The turn's fields are the request's: the prompt is the last message, the context its system messages.
            var error = OpenAiError.Of(e);
            var param = error.Param switch
            {
                "prompt" => string.Create(CultureInfo.InvariantCulture, $"messages[{last}].content"),
                "context" => "messages",
                _ => error.Param,
            };
            var message = param is null || error.Param is null ? error.Message : param + error.Message[error.Param.Length..];
            return (default, null, error with { Param = param, Message = message });
        }
    }

    private static OpenAiChatReply ReplyOf(string model, CompleteReply reply) =>
        new(model, reply.Text, [], "stop", new OpenAiUsage(reply.TokensIn, reply.TokensOut, reply.CostUsd));
}
