using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;
using Xunit.Abstractions;

namespace PersistentAgents.Learning.Tests;

public sealed class AgentConcurrencyTests(ITestOutputHelper output)
{
    private static readonly SimulatedArm[] Arms =
    [
        new("good", SuccessRate: 1, Quality: 0.9, PricePerMtok: 1),
        new("fair", SuccessRate: 1, Quality: 0.6, PricePerMtok: 1),
    ];

    [Fact]
    public async Task A_write_held_for_one_agent_holds_up_that_agents_next_outcome_but_not_another_agents()
    {
        var store = new HeldWritesStore(new InMemoryLearningStateStore(), heldAgent: "slow");
        using var service = new LearningService(store, Options.Create(new LearningOptions()), new Random(1));

        var first = PlayAsync(service, "slow", "slow-1");
        await store.HeldWriteStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var second = PlayAsync(service, "slow", "slow-2");

        // The other agent's ranking and outcome go through while the slow agent's write is held.
        await PlayAsync(service, "quick", "quick-1").WaitAsync(TimeSpan.FromSeconds(30));

        // The slow agent's second outcome waits for its first: its write has not even begun.
        await Task.Delay(200);
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);
        Assert.Equal(1, store.WritesStarted("slow"));

        store.Release();
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(2, store.WritesStarted("slow"));
        Assert.Equal(1, store.MostConcurrentWrites("slow"));

        var scores = await service.GetScoresAsync(new GetScoresRequest { Tenant = BanditSimulation.Tenant, Agent = "slow" }, CancellationToken.None);
        Assert.Equal(2, scores.Scores.Sum(s => s.Pulls));
        Assert.Equal(0, service.LiveGates);
    }

    [Fact]
    public async Task An_agent_being_worked_on_is_not_let_go_and_keeps_every_arm()
    {
        var store = new HeldWritesStore(new InMemoryLearningStateStore(), heldAgent: "slow");
        using var service = new LearningService(store, Options.Create(new LearningOptions { ResidentAgents = 1 }), new Random(1));

        // The slow agent has arms of one task type in memory, then an outcome of another is held at its write.
        store.Release();
        await PlayAsync(service, "slow", "slow-1");
        store.Hold();
        var held = PlayAsync(service, "slow", "slow-2", taskType: "summarize");
        await store.HeldWriteStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // Another agent's turn, beyond the one resident agent, must not let the slow agent go under its outcome.
        await PlayAsync(service, "quick", "quick-1").WaitAsync(TimeSpan.FromSeconds(30));
        store.Release();
        await held.WaitAsync(TimeSpan.FromSeconds(30));

        var scores = await service.GetScoresAsync(new GetScoresRequest { Tenant = BanditSimulation.Tenant, Agent = "slow" }, CancellationToken.None);
        Assert.Equal(1, scores.Scores.Where(s => s.TaskType == BanditSimulation.TaskType).Sum(s => s.Pulls));
        Assert.Equal(1, scores.Scores.Where(s => s.TaskType == "summarize").Sum(s => s.Pulls));
        Assert.Equal(1, service.ResidentAgents);
    }

    [Fact]
    public async Task Eight_agents_against_a_store_taking_50_ms_a_call_run_at_once_not_one_after_another()
    {
        const int Agents = 8;
        const int Rounds = 3;

        // On two cores the pool starts with two threads, and the test runner's own waits can hold them: the pool's
        // slow injection of threads (about two a second) would be measured instead of the service.
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, 4), Math.Max(completionPorts, 4));

        async Task<TimeSpan> TimeAsync(Func<LearningService, Task> play)
        {
            using var service = new LearningService(new DelayedStore(new InMemoryLearningStateStore(), TimeSpan.FromMilliseconds(50)), Options.Create(new LearningOptions()), new Random(1));
            var started = TimeProvider.System.GetTimestamp();

            // On the thread pool, as a host runs requests, not on the test framework's few threads.
            await Task.Run(() => play(service));
            return TimeProvider.System.GetElapsedTime(started);
        }

        async Task RoundsAsync(LearningService service, string agent)
        {
            for (var round = 0; round < Rounds; round++)
            {
                await PlayAsync(service, agent, $"{agent}-{round}");
            }
        }

        Task EightAtOnceAsync(LearningService service) => Task.WhenAll(Enumerable.Range(0, Agents).Select(a => RoundsAsync(service, $"agent-{a}")));

        // Twice unmeasured: the first runs pay for compiling the code paths, which on a loaded machine takes longer than the waits.
        await TimeAsync(EightAtOnceAsync);
        await TimeAsync(EightAtOnceAsync);
        var one = await TimeAsync(service => RoundsAsync(service, "agent-0"));
        var eight = await TimeAsync(EightAtOnceAsync);

        // What one gate for every agent gave: the agents' turns one after another.
        var oneAfterAnother = await TimeAsync(async service =>
        {
            for (var a = 0; a < Agents; a++)
            {
                await RoundsAsync(service, $"agent-{a}");
            }
        });

        output.WriteLine($"one agent {one.TotalMilliseconds:F0} ms, eight at once {eight.TotalMilliseconds:F0} ms, eight one after another {oneAfterAnother.TotalMilliseconds:F0} ms");
        // One gate for every agent makes eight at once as slow as one after another; per-agent gates about as fast
        // as one. The bound sits far from both, so a loaded machine does not decide the test.
        Assert.True(eight < oneAfterAnother * 0.6, $"eight agents took {eight.TotalMilliseconds:F0} ms, one {one.TotalMilliseconds:F0} ms, one after another {oneAfterAnother.TotalMilliseconds:F0} ms");
        Assert.True(oneAfterAnother >= one * 4, $"one after another took {oneAfterAnother.TotalMilliseconds:F0} ms, one {one.TotalMilliseconds:F0} ms");
    }

    private static async Task PlayAsync(LearningService service, string agent, string interactionId, string taskType = BanditSimulation.TaskType)
    {
        var request = BanditSimulation.RankRequestFor(Arms, "quality-first");
        request.Agent = agent;
        request.TaskType = taskType;
        var ranked = await service.RankAsync(request, CancellationToken.None);
        var outcome = new InteractionCompleted
        {
            InteractionId = interactionId, Tenant = BanditSimulation.Tenant, Agent = agent, TaskType = taskType,
            Success = true, Quality = 0.8, CostUsd = 0.001, ReferenceCostUsd = 0.001, Context = ranked.Context, Chosen = ranked.Ranked[0], CostWeight = ranked.CostWeight,
        };
        outcome.Attempts.Add(new AttemptOutcome { Arm = ranked.Ranked[0], Success = true });
        Assert.True((await service.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
    }

    /// <summary>A store every call of which takes <paramref name="delay"/>, like a sidecar round trip.</summary>
    private sealed class DelayedStore(InMemoryLearningStateStore inner, TimeSpan delay) : ILearningStateStore
    {
        public async Task<LearningSnapshot> LoadAsync(CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            return await inner.LoadAsync(cancellationToken);
        }

        public async Task<IReadOnlyDictionary<ArmKey, ArmState>> LoadArmsAsync(string tenant, string agent, CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            return await inner.LoadArmsAsync(tenant, agent, cancellationToken);
        }

        public async Task<bool> TryApplyAsync(LearningUpdate update, CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            return await inner.TryApplyAsync(update, cancellationToken);
        }

        public async Task<IReadOnlyList<Selection>> HistoryAsync(string tenant, string agent, string taskType, int limit, CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            return await inner.HistoryAsync(tenant, agent, taskType, limit, cancellationToken);
        }

        public async Task PutExperimentAsync(Experiment experiment, CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            await inner.PutExperimentAsync(experiment, cancellationToken);
        }

        public async Task<bool> DeleteExperimentAsync(string tenant, string agent, string name, CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            return await inner.DeleteExperimentAsync(tenant, agent, name, cancellationToken);
        }
    }

    /// <summary>A store whose writes for one agent wait until released, counting how many began and how many overlapped.</summary>
    private sealed class HeldWritesStore(InMemoryLearningStateStore inner, string heldAgent) : ILearningStateStore
    {
        private TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Dictionary<string, int> _started = [];
        private readonly Dictionary<string, int> _inFlight = [];
        private readonly Dictionary<string, int> _mostConcurrent = [];

        public TaskCompletionSource HeldWriteStarted { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _released.TrySetResult();

        /// <summary>Holds the agent's writes again, after a release, and waits for the next to start.</summary>
        public void Hold()
        {
            _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
            HeldWriteStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public int WritesStarted(string agent)
        {
            lock (_started)
            {
                return _started.GetValueOrDefault(agent);
            }
        }

        public int MostConcurrentWrites(string agent)
        {
            lock (_started)
            {
                return _mostConcurrent.GetValueOrDefault(agent);
            }
        }

        public Task<LearningSnapshot> LoadAsync(CancellationToken cancellationToken) => inner.LoadAsync(cancellationToken);

        public Task<IReadOnlyDictionary<ArmKey, ArmState>> LoadArmsAsync(string tenant, string agent, CancellationToken cancellationToken) =>
            inner.LoadArmsAsync(tenant, agent, cancellationToken);

        public async Task<bool> TryApplyAsync(LearningUpdate update, CancellationToken cancellationToken)
        {
            lock (_started)
            {
                _started[update.Agent] = _started.GetValueOrDefault(update.Agent) + 1;
                _inFlight[update.Agent] = _inFlight.GetValueOrDefault(update.Agent) + 1;
                _mostConcurrent[update.Agent] = Math.Max(_mostConcurrent.GetValueOrDefault(update.Agent), _inFlight[update.Agent]);
            }

            try
            {
                if (update.Agent == heldAgent)
                {
                    HeldWriteStarted.TrySetResult();
                    await _released.Task.WaitAsync(cancellationToken);
                }

                return await inner.TryApplyAsync(update, cancellationToken);
            }
            finally
            {
                lock (_started)
                {
                    _inFlight[update.Agent]--;
                }
            }
        }

        public Task<IReadOnlyList<Selection>> HistoryAsync(string tenant, string agent, string taskType, int limit, CancellationToken cancellationToken) =>
            inner.HistoryAsync(tenant, agent, taskType, limit, cancellationToken);

        public Task PutExperimentAsync(Experiment experiment, CancellationToken cancellationToken) => inner.PutExperimentAsync(experiment, cancellationToken);

        public Task<bool> DeleteExperimentAsync(string tenant, string agent, string name, CancellationToken cancellationToken) =>
            inner.DeleteExperimentAsync(tenant, agent, name, cancellationToken);
    }
}
