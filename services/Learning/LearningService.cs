using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning;

/// <summary>
/// Routes each interaction over (provider, model) arms per agent, task type and prompt complexity with
/// utility Thompson sampling, learns from every outcome and feedback exactly once, runs A/B experiments
/// and keeps the selection history behind the learning curves (docs/architecture.md, 'Learning').
/// </summary>
public sealed class LearningService : ILearningApi, IDisposable
{
    public const int DefaultHistoryLimit = 200;
    public const int MaxHistoryLimit = 5_000;
    public const int DefaultShareWindow = 100;

    private readonly ILearningStateStore _store;
    private readonly IEventPublisher? _events;
    private readonly LearningOptions _options;
    private readonly UtilityThompsonSampling _bandit;
    private readonly Random _random;
    private readonly TimeProvider _timeProvider;
    private readonly double _defaultLambda;
    private readonly AgentGates _gates = new();

    // Guards what agents share in memory (the arm table, the provider records, experiments and tallies, the
    // random source) for short computations; no I/O is done under it.
    private readonly Lock _memory = new();

    // What every agent's calls say about each provider right now, like a circuit breaker's counts: an
    // outage is the provider's, not one task type's. Transient, so not persisted.
    private readonly Dictionary<string, ProviderRecord> _providers = new(StringComparer.Ordinal);
    private Task<State>? _loading;
    private State? _state;

    /// <param name="events">Where <c>learning-updated</c> goes after each outcome learned from; none when null.</param>
    public LearningService(ILearningStateStore store, IOptions<LearningOptions> options, Random random, TimeProvider? timeProvider = null, IEventPublisher? events = null)
    {
        _store = store;
        _events = events;
        _options = options.Value;
        _bandit = new UtilityThompsonSampling(_options);
        _random = random;
        _timeProvider = timeProvider ?? TimeProvider.System;
        if (!CostPolicy.TryParse(_options.DefaultPolicy, out _defaultLambda))
        {
            throw new OptionsValidationException(nameof(LearningOptions), typeof(LearningOptions), [CostPolicy.Describe("Learning:DefaultPolicy", _options.DefaultPolicy)]);
        }
    }

    /// <summary>Agents whose arms are in memory (read without the lock: a figure for monitoring and tests).</summary>
    public int ResidentAgents => _state?.Arms.ResidentAgents ?? 0;

    /// <summary>Agents whose gate is held or waited for (a figure for monitoring, and for tests that gates are let go).</summary>
    public int LiveGates => _gates.Live;

    public async Task<RankReply> RankAsync(RankRequest request, CancellationToken cancellationToken)
    {
        var requestLambda = LambdaOf(request.Policy, "policy", _defaultLambda);
        var tenant = Tenancy.OrDefault(request.Tenant);
        var context = _bandit.ContextOf(request.Complexity);
        var reply = new RankReply { Context = context };
        var outputTokens = request.EstimatedOutputTokens > 0 ? request.EstimatedOutputTokens : _options.ExpectedOutputTokens;
        var candidates = request.Candidates
            .DistinctBy(c => c.Arm)
            .Select(c => (Candidate: c, ExpectedCost: RoutingConstraints.ExpectedCostUsd(c, request.EstimatedInputTokens, outputTokens)))
            .ToList();
        var maxCost = candidates.Select(c => c.ExpectedCost).DefaultIfEmpty(0).Max();
        var eligible = new List<(CandidateArm Candidate, double ExpectedCost)>();
        foreach (var (candidate, expectedCost) in candidates)
        {
            var reason = RoutingConstraints.ExclusionOf(candidate, request, expectedCost);
            if (reason is null)
            {
                eligible.Add((candidate, expectedCost));
            }
            else
            {
                reply.Excluded.Add(new ExcludedArm { Arm = candidate.Arm, Reason = reason });
            }
        }

        await UnderGateAsync(
            tenant,
            request.Agent,
            state =>
            {
                using var scope = _memory.EnterScope();
                var lambda = requestLambda;
                ArmRef? fixedArm = null;
                reply.Strategy = _bandit.Describe(lambda);
                if (Experiments.Covering(state.Experiments, tenant, request.Agent, request.TaskType) is { } experiment)
                {
                    var variant = Experiments.Draw(experiment, _random);
                    lambda = LambdaOf(variant.Policy, "policy", requestLambda);
                    fixedArm = variant.FixedArm;
                    reply.Experiment = experiment.Name;
                    reply.Variant = variant.Name;
                    reply.Strategy = fixedArm is null
                        ? $"experiment {experiment.Name}/{variant.Name}: {_bandit.Describe(lambda)}"
                        : $"experiment {experiment.Name}/{variant.Name}: fixed {fixedArm.Provider}/{fixedArm.Model}, then {_bandit.Describe(lambda)}";
                }

                reply.CostWeight = lambda;
                var sampled = eligible.Select(eligibleArm =>
                {
                    var candidate = eligibleArm.Candidate;
                    var key = KeyOf(tenant, request.Agent, request.TaskType, context, candidate.Arm);
                    // A new arm starts from the catalog's word; it is stored with the group's next outcome, as is the
                    // catalog's latest price.
                    var arm = (state.Arms.Find(key) ?? ArmState.New(candidate.PriorQuality)) with
                    {
                        CatalogCost = maxCost > 0 ? eligibleArm.ExpectedCost / maxCost : 0,
                    };
                    state.Arms[key] = arm;
                    var provider = _providers.GetValueOrDefault(candidate.Arm.Provider) ?? ProviderRecord.Healthy;
                    var providerDown = provider.ConsecutiveFailures >= _options.DownAfterFailures;
                    return (
                        candidate,
                        Down: providerDown || _bandit.IsDown(arm),
                        Probe: (providerDown && provider.Idle >= _options.ProbeInterval) || _bandit.IsDueForProbe(arm),
                        Sample: _bandit.Sample(arm, lambda, _random));
                }).ToList();

                // Arms whose circuit is open still end the chain: a half-open probe may find them healthy. Arms the
                // bandit holds down come after the healthy ones, except for at most one probe per interaction.
                var probe = sampled.Where(s => s.candidate.Available && s.Probe).Select(s => s.candidate.Arm).FirstOrDefault();
                reply.Ranked.AddRange(sampled
                    .OrderByDescending(s => s.candidate.Available)
                    .ThenByDescending(s => fixedArm is not null && s.candidate.Arm.Equals(fixedArm))
                    .ThenByDescending(s => probe is not null && s.candidate.Arm.Equals(probe))
                    .ThenBy(s => s.Down)
                    .ThenByDescending(s => s.Sample)
                    .Select(s => s.candidate.Arm));
                return Task.FromResult(reply);
            },
            cancellationToken);

        return reply;
    }

    public async Task<RecordOutcomeReply> RecordOutcomeAsync(InteractionCompleted request, CancellationToken cancellationToken)
    {
        var tenant = Tenancy.OrDefault(request.Tenant);
        var context = request.Context.Length == 0 ? "simple" : request.Context;
        var group = new GroupKey(tenant, request.Agent, request.TaskType, context);
        var relativeCost = request.ReferenceCostUsd > 0 ? request.CostUsd / request.ReferenceCostUsd : 0;
        var updated = await UnderGateAsync<(LearningUpdated? Learned, List<((string Tenant, string Agent) Agent, string Provider)> ForgivenElsewhere)>(
            tenant,
            request.Agent,
            async state =>
            {
                var (changed, selection, tally, forgivenElsewhere) = PrepareOutcome(state, request, tenant, context, group, relativeCost);
                if (!await _store.TryApplyAsync(new LearningUpdate(request.InteractionId, changed, selection, tally), cancellationToken))
                {
                    return (null, []);
                }

                lock (_memory)
                {
                    foreach (var (key, arm) in changed)
                    {
                        state.Arms[key] = arm;
                    }

                    if (tally is { } applied)
                    {
                        state.Tallies[applied.Key] = applied.Value;
                    }
                }

                var learned = new LearningUpdated
                {
                    Tenant = tenant, Agent = request.Agent, TaskType = request.TaskType, Context = context, InteractionId = request.InteractionId,
                    At = Timestamp.FromDateTimeOffset(_timeProvider.GetUtcNow()),
                };
                learned.Scores.AddRange(changed.Where(a => a.Key.Group == group).Select(a => ScoreOf(a.Key, a.Value, _defaultLambda)));
                return (learned, forgivenElsewhere);
            },
            cancellationToken);
        if (updated.Learned is null)
        {
            return new RecordOutcomeReply { Recorded = false };
        }

        foreach (var (agent, provider) in updated.ForgivenElsewhere)
        {
            await ForgiveAsync(agent, provider, request.InteractionId, cancellationToken);
        }

        // Outside the gate: a slow broker must not hold up routing. The outcome is already stored.
        if (_events is not null)
        {
            await _events.PublishAsync(Topics.LearningUpdated, $"learning-{request.InteractionId}", updated.Learned, cancellationToken);
        }

        return new RecordOutcomeReply { Recorded = true };
    }

    /// <summary>
    /// The outcome's update, computed under the memory lock from the agent's arms in memory: its group's arms
    /// decayed and the attempts observed, the agent's own arms a recovered provider's outage put down forgiven,
    /// the selection and the experiment tally; and the other agents whose arms that recovery forgives.
    /// </summary>
    private (Dictionary<ArmKey, ArmState> Changed, Selection? Selection, KeyValuePair<VariantKey, VariantTally>? Tally, List<((string Tenant, string Agent) Agent, string Provider)> ForgivenElsewhere) PrepareOutcome(
        State state, InteractionCompleted request, string tenant, string context, GroupKey group, double relativeCost)
    {
        lock (_memory)
        {
            var changed = state.Arms
                .InGroup(group)
                .ToDictionary(a => a.Key, a => _bandit.Decay(a.Value));
            foreach (var attempt in request.Attempts)
            {
                var key = KeyOf(tenant, request.Agent, request.TaskType, context, attempt.Arm);
                // An arm never ranked in this process (an outcome replayed after a restart) gets a neutral prior.
                var arm = changed.GetValueOrDefault(key) ?? ArmState.New(priorQuality: 0.5);
                changed[key] = attempt.Success
                    ? _bandit.Observe(arm, success: true, request.Quality, relativeCost)
                    : _bandit.Observe(arm, success: false, quality: 0, relativeCost: 0);
            }

            var forgivenElsewhere = ForgiveRecoveredProviders(state, request, changed);

            var chosen = request.Chosen ?? request.Attempts.FirstOrDefault()?.Arm;
            var selection = chosen is null ? null : new Selection
            {
                InteractionId = request.InteractionId,
                At = request.At ?? Timestamp.FromDateTimeOffset(_timeProvider.GetUtcNow()),
                TaskType = request.TaskType,
                Context = context,
                Chosen = chosen,
                Success = request.Success,
                Quality = request.Success ? request.Quality : 0,
                CostUsd = request.CostUsd,
                Utility = request.Success ? request.Quality - (request.CostWeight * relativeCost) : 0,
                Variant = request.Variant,
            };
            selection?.Scores.AddRange(changed
                .OrderByDescending(a => _bandit.Score(a.Value, request.CostWeight))
                .Select(a => ScoreOf(a.Key, a.Value, request.CostWeight)));

            KeyValuePair<VariantKey, VariantTally>? tally = null;
            if (request.Experiment.Length > 0
                && state.Experiments.FirstOrDefault(e => e.Tenant == tenant && e.Agent == request.Agent && e.Name == request.Experiment) is { } experiment
                && experiment.Variants.Any(v => v.Name == request.Variant))
            {
                var key = new VariantKey(tenant, request.Agent, experiment.Name, request.Variant);
                tally = KeyValuePair.Create(key, (state.Tallies.GetValueOrDefault(key) ?? VariantTally.Empty)
                    .Add(request.Success, request.Success ? request.Quality : 0, request.CostUsd, Experiments.Metric(experiment, request)));
            }

            return (changed, selection, tally, forgivenElsewhere);
        }
    }

    /// <summary>
    /// Forgives, under its own gate, another agent's arms that <paramref name="provider"/>'s outage put down and
    /// that are still down: each agent's state is written by that agent's work only, never in another's update.
    /// </summary>
    private async Task ForgiveAsync((string Tenant, string Agent) agent, string provider, string interactionId, CancellationToken cancellationToken)
    {
        await UnderGateAsync(
            agent.Tenant,
            agent.Agent,
            async state =>
            {
                Dictionary<ArmKey, ArmState> forgiven;
                lock (_memory)
                {
                    forgiven = state.Arms.OfAgent(agent.Tenant, agent.Agent)
                        .Where(a => a.Key.Provider == provider && _bandit.IsDown(a.Value))
                        .ToDictionary(a => a.Key, a => UtilityThompsonSampling.Forgive(a.Value));
                }

                if (forgiven.Count == 0
                    || !await _store.TryApplyAsync(new LearningUpdate($"forgive:{interactionId}:{agent.Tenant}/{agent.Agent}", forgiven), cancellationToken))
                {
                    return false;
                }

                lock (_memory)
                {
                    foreach (var (key, arm) in forgiven)
                    {
                        state.Arms[key] = arm;
                    }
                }

                return true;
            },
            cancellationToken);
    }

    public async Task<RecordOutcomeReply> RecordFeedbackAsync(FeedbackRecorded request, CancellationToken cancellationToken)
    {
        if (!double.IsFinite(request.Score) || request.Score is < 0 or > 1)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "score: must be a number from 0 to 1"));
        }

        if (request.Arm is null || request.Arm.Provider.Length == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "arm: the provider and model that served the interaction are required"));
        }

        var context = request.Context.Length == 0 ? "simple" : request.Context;
        var key = KeyOf(Tenancy.OrDefault(request.Tenant), request.Agent, request.TaskType, context, request.Arm);
        return await UnderGateAsync(
            key.Tenant,
            key.Agent,
            async state =>
            {
                ArmState arm;
                lock (_memory)
                {
                    arm = _bandit.ObserveFeedback(state.Arms.Find(key) ?? ArmState.New(priorQuality: 0.5), request.Score);
                }

                var changed = new Dictionary<ArmKey, ArmState> { [key] = arm };
                if (!await _store.TryApplyAsync(new LearningUpdate($"feedback:{request.InteractionId}", changed), cancellationToken))
                {
                    return new RecordOutcomeReply { Recorded = false };
                }

                lock (_memory)
                {
                    state.Arms[key] = arm;
                }

                return new RecordOutcomeReply { Recorded = true };
            },
            cancellationToken);
    }

    public async Task<ScoresReply> GetScoresAsync(GetScoresRequest request, CancellationToken cancellationToken)
    {
        var tenant = Tenancy.OrDefault(request.Tenant);
        var window = request.ShareWindow > 0 ? Math.Min(request.ShareWindow, MaxHistoryLimit) : DefaultShareWindow;
        var lambda = LambdaOf(request.Policy, "policy", _defaultLambda);
        var scores = await UnderGateAsync(
            tenant,
            request.Agent,
            state =>
            {
                lock (_memory)
                {
                    return Task.FromResult<List<ArmScore>>([.. state.Arms
                        .OfAgent(tenant, request.Agent)
                        .Where(a => request.TaskType.Length == 0 || a.Key.TaskType == request.TaskType)
                        .Select(a => ScoreOf(a.Key, a.Value, lambda))]);
                }
            },
            cancellationToken);

        var reply = new ScoresReply();
        foreach (var taskType in scores.Select(s => s.TaskType).Distinct(StringComparer.Ordinal).ToList())
        {
            var recent = await _store.HistoryAsync(tenant, request.Agent, taskType, window, cancellationToken);
            foreach (var score in scores.Where(s => s.TaskType == taskType))
            {
                var inContext = recent.Count(s => s.Context == score.Context);
                score.TrafficShare = inContext == 0 ? 0 : (double)recent.Count(s => s.Context == score.Context && score.Arm.Equals(s.Chosen)) / inContext;
            }

            reply.Shares.AddRange(recent
                .GroupBy(s => s.Chosen)
                .OrderByDescending(g => g.Count())
                .Select(g => new ArmShare { Arm = g.Key, TaskType = taskType, Share = (double)g.Count() / recent.Count }));
        }
        reply.Scores.AddRange(scores
            .OrderBy(s => s.TaskType, StringComparer.Ordinal)
            .ThenBy(s => s.Context, StringComparer.Ordinal)
            .ThenByDescending(s => s.Score));
        return reply;
    }

    public async Task<SelectionHistory> GetHistoryAsync(GetHistoryRequest request, CancellationToken cancellationToken)
    {
        if (request.Limit is < 0 or > MaxHistoryLimit)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"limit: must be from 0 to {MaxHistoryLimit}"));
        }

        var limit = request.Limit == 0 ? DefaultHistoryLimit : request.Limit;
        var reply = new SelectionHistory();
        reply.Selections.AddRange(await _store.HistoryAsync(Tenancy.OrDefault(request.Tenant), request.Agent, request.TaskType, limit, cancellationToken));
        return reply;
    }

    public async Task<Experiment> PutExperimentAsync(Experiment request, CancellationToken cancellationToken)
    {
        var experiment = request.Clone();
        experiment.Tenant = Tenancy.OrDefault(experiment.Tenant);
        experiment.CreatedAt = Timestamp.FromDateTimeOffset(_timeProvider.GetUtcNow());
        return await UnderGateAsync(
            experiment.Tenant,
            experiment.Agent,
            async state =>
            {
                lock (_memory)
                {
                    Experiments.Validate(experiment, state.Experiments.Where(e => e.Tenant == experiment.Tenant && e.Agent == experiment.Agent));
                }

                await _store.PutExperimentAsync(experiment, cancellationToken);
                lock (_memory)
                {
                    Forget(state, experiment.Tenant, experiment.Agent, experiment.Name);
                    state.Experiments.Add(experiment);
                }

                return experiment.Clone();
            },
            cancellationToken,
            loadArms: false);
    }

    public async Task<DeleteExperimentReply> DeleteExperimentAsync(DeleteExperimentRequest request, CancellationToken cancellationToken)
    {
        var tenant = Tenancy.OrDefault(request.Tenant);
        return await UnderGateAsync(
            tenant,
            request.Agent,
            async state =>
            {
                var deleted = await _store.DeleteExperimentAsync(tenant, request.Agent, request.Name, cancellationToken);
                lock (_memory)
                {
                    Forget(state, tenant, request.Agent, request.Name);
                }

                return new DeleteExperimentReply { Deleted = deleted };
            },
            cancellationToken,
            loadArms: false);
    }

    public async Task<ExperimentResults> GetExperimentsAsync(GetExperimentsRequest request, CancellationToken cancellationToken)
    {
        var tenant = Tenancy.OrDefault(request.Tenant);
        return await UnderGateAsync(
            tenant,
            request.Agent,
            state =>
            {
                var reply = new ExperimentResults();
                lock (_memory)
                {
                    reply.Experiments.AddRange(state.Experiments
                        .Where(e => e.Tenant == tenant && e.Agent == request.Agent)
                        .Select(e => Experiments.Results(e.Clone(), state.Tallies)));
                }

                return Task.FromResult(reply);
            },
            cancellationToken,
            loadArms: false);
    }

    public void Dispose() => _gates.Dispose();

    /// <summary>
    /// Runs <paramref name="work"/> on the state with the agent's gate held: one routing decision, outcome or
    /// experiment change of an agent at a time, so that its decays, observations and the store's writes never
    /// interleave, while other agents' work, their store I/O included, goes on. The work takes the memory lock
    /// for what it reads or changes in memory, never across I/O. With <paramref name="loadArms"/>, the agent's
    /// arms are in memory during the work; afterwards the least recently used agents beyond
    /// <see cref="LearningOptions.ResidentAgents"/> that no one is working on are let go.
    /// </summary>
    private async Task<T> UnderGateAsync<T>(string tenant, string agent, Func<State, Task<T>> work, CancellationToken cancellationToken, bool loadArms = true)
    {
        using var gate = await _gates.EnterAsync(tenant, agent, cancellationToken);
        var state = await StateAsync(cancellationToken);
        if (loadArms)
        {
            bool resident;
            lock (_memory)
            {
                resident = state.Arms.Touch(tenant, agent);
            }

            if (!resident)
            {
                var stored = await _store.LoadArmsAsync(tenant, agent, cancellationToken);
                lock (_memory)
                {
                    state.Arms.Add(tenant, agent, ForgivenOnLoad(stored).ToList());
                }
            }
        }

        var result = await work(state);
        lock (_memory)
        {
            state.Arms.KeepAtMost(_options.ResidentAgents, (residentTenant, residentAgent) =>
                (residentTenant == tenant && residentAgent == agent) || _gates.InUse(residentTenant, residentAgent));
        }

        return result;
    }

    /// <summary>
    /// A provider's recovery forgives the arms it put down, but only those in memory at the time; an agent
    /// loaded later gets its down arms of a provider that has recovered since this process started, and is
    /// healthy now, forgiven as it loads. (An arm that went down for its own reasons after that recovery is
    /// forgiven too, and has to fail again: the price of not keeping every agent in memory.) Stored with the
    /// group's next outcome.
    /// </summary>
    private IEnumerable<KeyValuePair<ArmKey, ArmState>> ForgivenOnLoad(IReadOnlyDictionary<ArmKey, ArmState> arms) =>
        arms.Select(a => _providers.GetValueOrDefault(a.Key.Provider) is { HasRecovered: true } provider
                         && provider.ConsecutiveFailures < _options.DownAfterFailures
                         && _bandit.IsDown(a.Value)
            ? KeyValuePair.Create(a.Key, UtilityThompsonSampling.Forgive(a.Value))
            : a);

    /// <summary>
    /// Counts the outcome's calls per provider; a provider that was down and answered again gets every arm of
    /// every agent in memory that its outage put down forgiven, so traffic returns everywhere, not only where it
    /// was probed (agents loaded later: <see cref="ForgivenOnLoad"/>). Call under the outcome's agent's gate and
    /// the memory lock, before the update is stored: that agent's forgiven arms are part of it; the other agents
    /// with arms to forgive are returned, for <see cref="ForgiveAsync"/> under their own gates.
    /// </summary>
    private List<((string Tenant, string Agent) Agent, string Provider)> ForgiveRecoveredProviders(State state, InteractionCompleted outcome, Dictionary<ArmKey, ArmState> changed)
    {
        var tenant = Tenancy.OrDefault(outcome.Tenant);
        var elsewhere = new List<((string Tenant, string Agent) Agent, string Provider)>();
        foreach (var name in _providers.Keys.ToList())
        {
            _providers[name] = _providers[name] with { Idle = _providers[name].Idle + 1 };
        }

        foreach (var attempt in outcome.Attempts)
        {
            var before = _providers.GetValueOrDefault(attempt.Arm.Provider) ?? ProviderRecord.Healthy;
            var recovered = attempt.Success && before.ConsecutiveFailures >= _options.DownAfterFailures;
            _providers[attempt.Arm.Provider] = new ProviderRecord(attempt.Success ? 0 : before.ConsecutiveFailures + 1, Idle: 0, before.HasRecovered || recovered);
            if (!recovered)
            {
                continue;
            }

            foreach (var (key, arm) in state.Arms.All.Where(a => a.Key.Provider == attempt.Arm.Provider).ToList())
            {
                var current = changed.GetValueOrDefault(key) ?? arm;
                if (!_bandit.IsDown(current))
                {
                    continue;
                }

                if (key.Tenant == tenant && key.Agent == outcome.Agent)
                {
                    changed[key] = UtilityThompsonSampling.Forgive(current);
                }
                else if (!elsewhere.Contains(((key.Tenant, key.Agent), attempt.Arm.Provider)))
                {
                    elsewhere.Add(((key.Tenant, key.Agent), attempt.Arm.Provider));
                }
            }
        }

        return elsewhere;
    }

    private ArmScore ScoreOf(ArmKey key, ArmState arm, double lambda) => new()
    {
        Arm = new ArmRef { Provider = key.Provider, Model = key.Model },
        TaskType = key.TaskType,
        Context = key.Context,
        Score = _bandit.Score(arm, lambda),
        Pulls = arm.Pulls,
        SuccessRate = _bandit.Reliability(arm),
        MeanQuality = _bandit.Quality(arm),
        RelativeCost = UtilityThompsonSampling.RelativeCost(arm),
    };

    private static void Forget(State state, string tenant, string agent, string name)
    {
        state.Experiments.RemoveAll(e => e.Tenant == tenant && e.Agent == agent && e.Name == name);
        foreach (var key in state.Tallies.Keys.Where(k => k.Tenant == tenant && k.Agent == agent && k.Experiment == name).ToList())
        {
            state.Tallies.Remove(key);
        }
    }

    private static double LambdaOf(string policy, string field, double whenEmpty)
    {
        if (policy.Length == 0)
        {
            return whenEmpty;
        }

        return CostPolicy.TryParse(policy, out var lambda)
            ? lambda
            : throw new RpcException(new Status(StatusCode.InvalidArgument, CostPolicy.Describe(field, policy)));
    }

    /// <summary>
    /// The state, loaded from the store once on first use by whichever agent's work comes first; the others wait
    /// for that load. A failed load is tried again by the next call.
    /// </summary>
    private Task<State> StateAsync(CancellationToken cancellationToken)
    {
        lock (_memory)
        {
            if (_loading is null || (_loading.IsCompleted && !_loading.IsCompletedSuccessfully))
            {
                _loading = LoadStateAsync();
            }

            return _loading.WaitAsync(cancellationToken);
        }
    }

    // Not cancelled by the first caller's token: other callers wait for the same load.
    private async Task<State> LoadStateAsync()
    {
        var snapshot = await _store.LoadAsync(CancellationToken.None);
        _state = new State(new ArmTable(), [.. snapshot.Experiments], new Dictionary<VariantKey, VariantTally>(snapshot.Tallies));
        return _state;
    }

    private static ArmKey KeyOf(string tenant, string agent, string taskType, string context, ArmRef arm) =>
        new(tenant, agent, taskType, context, arm.Provider, arm.Model);


    /// <param name="HasRecovered">Whether the provider was down and answered again since this process started.</param>
    private sealed record ProviderRecord(int ConsecutiveFailures, int Idle, bool HasRecovered = false)
    {
        public static readonly ProviderRecord Healthy = new(0, 0);
    }

    private sealed record State(ArmTable Arms, List<Experiment> Experiments, Dictionary<VariantKey, VariantTally> Tallies);
}
