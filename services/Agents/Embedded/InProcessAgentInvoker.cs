using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Embedded;

/// <summary>
/// Turn-based concurrency in one process, as an actor runtime gives it: turns of one agent run one after
/// the other in arrival order, different agents run in parallel. A gate lives while turns wait on it.
/// </summary>
public sealed class InProcessAgentInvoker(AgentLoop loop, IAgentStateStore state) : IAgentInvoker
{
    private readonly Dictionary<AgentId, Gate> _gates = [];
    private readonly Lock _gatesLock = new();

    public Task<CompleteReply> CompleteAsync(AgentId agent, ValidCompleteRequest request, Func<string, CancellationToken, ValueTask>? onDelta, CancellationToken cancellationToken) =>
        RunTurnAsync(agent, token => loop.CompleteAsync(agent, request, onDelta, token), cancellationToken);

    public Task<PurgeReply> PurgeAsync(AgentId agent, CancellationToken cancellationToken) =>
        RunTurnAsync(agent, token => loop.PurgeAsync(agent, token), cancellationToken);

    // A read needs no turn: the store returns the last whole aggregate written.
    public Task<AgentAggregate?> LoadAsync(AgentId agent, CancellationToken cancellationToken) => state.LoadAsync(agent, cancellationToken);

    private async Task<T> RunTurnAsync<T>(AgentId agent, Func<CancellationToken, Task<T>> turn, CancellationToken cancellationToken)
    {
        var gate = Enter(agent);
        try
        {
            await gate.Semaphore.WaitAsync(cancellationToken);
            try
            {
                return await turn(cancellationToken);
            }
            finally
            {
                gate.Semaphore.Release();
            }
        }
        finally
        {
            Leave(agent, gate);
        }
    }

    private Gate Enter(AgentId agent)
    {
        lock (_gatesLock)
        {
            if (!_gates.TryGetValue(agent, out var gate))
            {
                gate = new Gate();
                _gates[agent] = gate;
            }

            gate.Users++;
            return gate;
        }
    }

    private void Leave(AgentId agent, Gate gate)
    {
        lock (_gatesLock)
        {
            if (--gate.Users == 0)
            {
                _gates.Remove(agent);
                gate.Semaphore.Dispose();
            }
        }
    }

    private sealed class Gate
    {
        public SemaphoreSlim Semaphore { get; } = new(1, 1);

        public int Users { get; set; }
    }
}
