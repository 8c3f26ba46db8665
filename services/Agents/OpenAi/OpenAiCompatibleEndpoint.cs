using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;

namespace PersistentAgents.Agents.OpenAi;

public static class OpenAiCompatibleEndpoint
{
    /// <summary>
    /// The platform in OpenAI's chat-completions protocol, so that any OpenAI client can use it:
    /// <c>POST /v1/chat/completions</c> (streamed or not; catalog models through the gateway, and
    /// <c>agent/&lt;name&gt;</c> as a persistent agent's turn) and <c>GET /v1/models</c>. The Responses API
    /// (<c>/v1/responses</c>) and any other <c>/v1</c> path answer a 404 OpenAI error that points to chat
    /// completions. It needs only
    /// <see cref="IGatewayApi"/> and <see cref="IAgentInvoker"/>, so the embedded host and the distributed
    /// agents app serve the same routes; the caller maps them behind its tenant authorization.
    /// </summary>
    public static IEndpointRouteBuilder MapOpenAiCompatibleApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var services = endpoints.ServiceProvider;
        // Resolved at the first request, not at mapping: the services are not all buildable before the host starts.
        IGatewayApi? gateway = null;
        IAgentInvoker? invoker = null;
        IGatewayApi Gateway() => gateway ??= services.GetRequiredService<IGatewayApi>();
        IAgentInvoker Invoker() => invoker ??= services.GetRequiredService<IAgentInvoker>();
        AgentLimits Limits() => services.GetRequiredService<IOptions<AgentLimits>>().Value;
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;

        var models = new OpenAiModels(Gateway, time);
        var completions = new OpenAiChatCompletions(Gateway, models, new OpenAiAgentTurns(Invoker, Limits, time), time);
        endpoints.MapPost("/v1/chat/completions", (RequestDelegate)completions.HandleAsync);
        endpoints.MapGet("/v1/models", (RequestDelegate)models.ListAsync);
        endpoints.Map("/v1/responses/{**rest}", context => OpenAiJson.SendErrorAsync(context.Response, OpenAiError.ResponsesUnsupported()));
        // Any other /v1 path or method (routes more specific than this one win), so that an OpenAI client
        // reads why instead of an empty 404 or 405.
        endpoints.Map("/v1/{**rest}", context => OpenAiJson.SendErrorAsync(
            context.Response, OpenAiError.UnknownEndpoint(context.Request.Method, context.Request.Path.Value ?? "")));
        return endpoints;
    }
}
