using System.Text.Json;
using Dapr.Actors.Runtime;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Dapr;

/// <summary>
/// A persistent agent hosted by the Dapr actor runtime: the sidecar gives it turn-based concurrency and
/// places it on one replica; its aggregate statistics are its actor state (<c>agent-actor-state</c>), written
/// before a turn's reply leaves. Idle agents are deactivated by the runtime and come back from that state.
/// </summary>
public sealed class PersistentAgentActor(
    ActorHost host, IServiceProvider services, IOptions<AgentLimits> limits, IMemoryMaintenanceApi maintenance) : Actor(host), IPersistentAgent, IRemindable
{
    /// <summary>The reminder of the agent's periodic work: turning its finished days of episodes into summaries.</summary>
    public const string ConsolidationReminder = "consolidate";

    private const string AggregateKey = "aggregate";

    // How long a task id is remembered: pub/sub redelivers within minutes (docs/architecture.md, 'Dapr facts'),
    // a day is ample.
    private static readonly TimeSpan TaskMemory = TimeSpan.FromDays(1);
    private AgentLoop? _loop;

    private AgentId Agent => ActorIds.AgentOf(Id);

    private AgentLoop Loop => _loop ??= ActivatorUtilities.CreateInstance<AgentLoop>(services, new ActorStateStore(StateManager));

    /// <summary>
    /// Registers the agent's periodic work on every activation: the runtime keeps one reminder per name, so
    /// registering again only updates it, and a reminder outlives deactivation.
    /// </summary>
    protected override async Task OnActivateAsync() =>
        await RegisterReminderAsync(ConsolidationReminder, null, limits.Value.ConsolidationDueTime, limits.Value.ConsolidationPeriod);

    public async Task ReceiveReminderAsync(string reminderName, byte[] state, TimeSpan dueTime, TimeSpan period)
    {
        if (reminderName == ConsolidationReminder)
        {
            var agent = Agent;
            await maintenance.ConsolidateAsync(new ConsolidateRequest { Agent = new AgentRef { Tenant = agent.Tenant, Agent = agent.Name } }, CancellationToken.None);
        }
    }

    public async Task<byte[]> CompleteAsync(byte[] request)
    {
        var result = new AgentTurnResult();
        try
        {
            var valid = CompleteRequestValidator.Validate(CompleteRequest.Parser.ParseFrom(request), limits.Value);
            result.Reply = await Loop.CompleteAsync(Agent, valid, onDelta: null, CancellationToken.None);
        }
        catch (RpcException e)
        {
            result.StatusCode = (int)e.StatusCode;
            result.StatusMessage = e.Status.Detail;
            result.RetryAfterSeconds = BudgetDay.RetryAfterOf(e) ?? 0;
        }

        return result.ToByteArray();
    }

    public async Task<byte[]> RunTaskAsync(string taskId, byte[] request)
    {
        var key = TaskKey(taskId);
        var known = await StateManager.TryGetStateAsync<byte[]>(key);
        if (known.HasValue)
        {
            return known.Value;
        }

        var turn = AgentTurnResult.Parser.ParseFrom(await CompleteAsync(request));
        var result = new AgentTaskResult { TaskId = taskId, Agent = Agent.Name };
        if (turn.StatusCode == 0)
        {
            result.Reply = turn.Reply;
        }
        else
        {
            result.ErrorCode = ((StatusCode)turn.StatusCode).ToString().ToUpperInvariant();
            result.ErrorMessage = turn.StatusMessage;
        }

        var run = new TaskRun { Result = result }.ToByteArray();
        await StateManager.SetStateAsync(key, run, TaskMemory);
        await StateManager.SaveStateAsync();
        return run;
    }

    public async Task MarkTaskPublishedAsync(string taskId)
    {
        var key = TaskKey(taskId);
        var known = await StateManager.TryGetStateAsync<byte[]>(key);
        if (known.HasValue)
        {
            var run = TaskRun.Parser.ParseFrom(known.Value);
            run.Published = true;
            await StateManager.SetStateAsync(key, run.ToByteArray(), TaskMemory);
            await StateManager.SaveStateAsync();
        }
    }

    public async Task<byte[]> PurgeAsync() => (await Loop.PurgeAsync(Agent, CancellationToken.None)).ToByteArray();

    public async Task<byte[]> GetAggregateAsync()
    {
        var stored = await StateManager.TryGetStateAsync<AgentAggregate>(AggregateKey);
        return stored.HasValue ? JsonSerializer.SerializeToUtf8Bytes(stored.Value) : [];
    }

    private static string TaskKey(string taskId) => $"task:{taskId}";

    /// <summary>The agent loop's state port on the actor's state, saved at once so an acknowledged turn is durable.</summary>
    private sealed class ActorStateStore(IActorStateManager state) : IAgentStateStore
    {
        public async Task<AgentAggregate?> LoadAsync(AgentId agent, CancellationToken cancellationToken)
        {
            var stored = await state.TryGetStateAsync<AgentAggregate>(AggregateKey, cancellationToken);
            return stored.HasValue ? stored.Value : null;
        }

        public async Task SaveAsync(AgentId agent, AgentAggregate aggregate, CancellationToken cancellationToken)
        {
            await state.SetStateAsync(AggregateKey, aggregate, cancellationToken);
            await state.SaveStateAsync(cancellationToken);
        }

        public async Task DeleteAsync(AgentId agent, CancellationToken cancellationToken)
        {
            await state.TryRemoveStateAsync(AggregateKey, cancellationToken);
            await state.SaveStateAsync(cancellationToken);
        }
    }
}
