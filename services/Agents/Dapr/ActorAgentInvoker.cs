using System.Text.Json;
using Dapr.Actors.Client;
using Google.Protobuf;
using Grpc.Core;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Dapr;

/// <summary>
/// Delivers turns to the agent's actor through the sidecar, which keeps them one at a time per agent across
/// every replica. An actor call carries no stream, so a streamed complete gets its text as one piece.
/// </summary>
public sealed class ActorAgentInvoker(IActorProxyFactory actors) : IAgentInvoker
{
    public async Task<CompleteReply> CompleteAsync(AgentId agent, ValidCompleteRequest request, Func<string, CancellationToken, ValueTask>? onDelta, CancellationToken cancellationToken)
    {
        var message = new CompleteRequest
        {
            Agent = agent.Name,
            Prompt = request.Prompt,
            TaskType = request.TaskType,
            SessionId = request.SessionId,
            NoCache = request.NoCache,
            Policy = request.Policy,
            ResponseFormat = request.ResponseFormat,
        };
        if (request.ContextJson is { } context)
        {
            message.Context = Google.Protobuf.WellKnownTypes.Struct.Parser.ParseJson(context);
        }

        var result = AgentTurnResult.Parser.ParseFrom(await Proxy(agent).CompleteAsync(message.ToByteArray()));
        if (result.RetryAfterSeconds > 0)
        {
            throw BudgetDay.Refusal(result.StatusMessage, result.RetryAfterSeconds);
        }

        if (result.StatusCode != 0)
        {
            throw new RpcException(new Status((StatusCode)result.StatusCode, result.StatusMessage));
        }

        if (onDelta is not null && result.Reply.Text.Length > 0)
        {
            await onDelta(result.Reply.Text, cancellationToken);
        }

        return result.Reply;
    }

    public async Task<PurgeReply> PurgeAsync(AgentId agent, CancellationToken cancellationToken) =>
        PurgeReply.Parser.ParseFrom(await Proxy(agent).PurgeAsync());

    public async Task<AgentAggregate?> LoadAsync(AgentId agent, CancellationToken cancellationToken)
    {
        var json = await Proxy(agent).GetAggregateAsync();
        return json.Length == 0 ? null : JsonSerializer.Deserialize<AgentAggregate>(json);
    }

    private IPersistentAgent Proxy(AgentId agent) => actors.CreateActorProxy<IPersistentAgent>(ActorIds.Of(agent), IPersistentAgent.ActorType);
}
