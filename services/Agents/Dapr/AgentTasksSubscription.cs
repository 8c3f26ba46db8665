using System.Text;
using System.Text.Json;
using Dapr.Actors.Client;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Dapr;

/// <summary>
/// The <c>agent-tasks</c> subscription of the agents service (app-protocol http): the sidecar asks
/// <c>/dapr/subscribe</c> and posts each CloudEvent to <see cref="Route"/>. A task runs in its agent's actor
/// once per CloudEvent id, and its result goes to <c>agent-results</c> with the same id, once: a redelivered
/// task returns the stored result and publishes nothing new. A task that cannot run goes to
/// <c>agent-tasks-deadletter</c> with the reason, and is acknowledged.
/// </summary>
public static class AgentTasksSubscription
{
    public const string Route = "/events/agent-tasks";

    private static readonly JsonParser StrictParser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));

    public static IEndpointRouteBuilder MapAgentTasksSubscription(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/dapr/subscribe", () => Results.Json(new[]
        {
            new { pubsubname = DaprComponents.PubSub, topic = Topics.AgentTasks, route = Route, deadLetterTopic = Topics.AgentTasksDeadLetter },
        }));
        endpoints.MapPost(Route, HandleAsync);
        return endpoints;
    }

    private static async Task<IResult> HandleAsync(
        HttpContext context, IActorProxyFactory actors, IEventPublisher events, IOptions<AgentLimits> limits, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger(typeof(AgentTasksSubscription));
        string body;
        using (var reader = new StreamReader(context.Request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }

        var (eventId, data, problem) = Envelope(body);
        AgentTask? task = null;
        if (problem is null)
        {
            (task, problem) = Parse(data, limits.Value);
        }

        if (problem is not null || task is null)
        {
            logger.LogWarning("agent-tasks event {Id} dead-lettered: {Problem}", eventId, problem);
            await events.PublishAsync(Topics.AgentTasksDeadLetter, eventId.Length > 0 ? eventId : Guid.NewGuid().ToString("N"),
                new InvalidAgentTask { EventId = eventId, Reason = problem ?? "", Data = data }, context.RequestAborted);
            return Success();
        }

        var agent = actors.CreateActorProxy<IPersistentAgent>(ActorIds.Of(new AgentId(Tenancy.OrDefault(task.Tenant), task.Agent)), IPersistentAgent.ActorType);
        var run = TaskRun.Parser.ParseFrom(await agent.RunTaskAsync(eventId, task.Request.ToByteArray()));
        if (!run.Published)
        {
            await events.PublishAsync(Topics.AgentResults, eventId, run.Result, context.RequestAborted);
            await agent.MarkTaskPublishedAsync(eventId);
        }

        return Success();
    }

    /// <summary>The CloudEvent's id and its data as JSON text (inline or base64), or why the envelope is unusable.</summary>
    private static (string Id, string Data, string? Problem) Envelope(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ("", body, "body: is not a CloudEvent (a JSON object)");
            }

            var id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString()! : "";
            var data = root.TryGetProperty("data", out var inline) ? (inline.ValueKind == JsonValueKind.String ? inline.GetString()! : inline.GetRawText())
                : root.TryGetProperty("data_base64", out var encoded) ? Encoding.UTF8.GetString(Convert.FromBase64String(encoded.GetString() ?? ""))
                : "";
            return id.Length == 0 ? (id, data, "id: a CloudEvent needs an id, the task's id") : (id, data, null);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return ("", body, $"body: is not a CloudEvent ({e.Message})");
        }
    }

    private static (AgentTask? Task, string? Problem) Parse(string data, AgentLimits limits)
    {
        try
        {
            var task = StrictParser.Parse<AgentTask>(data);
            var request = task.Request ?? new CompleteRequest();
            request.Agent = task.Agent;
            if (task.Tenant.Length > 0)
            {
                CompleteRequestValidator.ValidateName("tenant", task.Tenant);
            }

            CompleteRequestValidator.Validate(request, limits);
            task.Request = request;
            return (task, null);
        }
        catch (RpcException e)
        {
            return (null, e.Status.Detail);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            return (null, $"data: is not an AgentTask ({e.Message})");
        }
    }

    private static IResult Success() => Results.Json(new { status = "SUCCESS" });
}
