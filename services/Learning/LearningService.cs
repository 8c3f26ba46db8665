using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning;

/// <summary>
/// Ranks (provider, model) arms per agent and task type with discounted Thompson sampling and learns from
/// every interaction outcome, exactly once per interaction id.
/// </summary>
public sealed class LearningService : ILearningApi, IDisposable
{
    private readonly ILearningStateStore _store;
    private readonly DiscountedThompsonSampling _bandit;
    private readonly Random _random;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Dictionary<ArmKey, ArmPosterior>? _posteriors;

    public LearningService(ILearningStateStore store, IOptions<LearningOptions> options, Random random)
    {
        _store = store;
        _bandit = new DiscountedThompsonSampling(options.Value);
        _random = random;
    }

    public async Task<RankReply> RankAsync(RankRequest request, CancellationToken cancellationToken)
    {
        var expectedCosts = request.Candidates.Select(c => c.InputPricePerMtok + c.OutputPricePerMtok).ToList();
        var maxCost = expectedCosts.DefaultIfEmpty(0).Max();
        await _gate.WaitAsync(cancellationToken);
        List<(ArmRef Arm, bool Available, double Sample)> sampled;
        try
        {
            var posteriors = await PosteriorsAsync(cancellationToken);
            sampled = request.Candidates.Select((candidate, i) =>
            {
                var key = KeyOf(request.Tenant, request.Agent, request.TaskType, candidate.Arm);
                if (!posteriors.TryGetValue(key, out var posterior))
                {
                    // A new arm starts from the catalog's word; it is stored with the group's next outcome.
                    posterior = _bandit.Prior(candidate.PriorQuality, maxCost > 0 ? expectedCosts[i] / maxCost : 0);
                    posteriors[key] = posterior;
                }

                return (candidate.Arm, candidate.Available, DiscountedThompsonSampling.Sample(posterior, _random));
            }).ToList();
        }
        finally
        {
            _gate.Release();
        }

        // Arms whose circuit is open still end the chain: a half-open probe may find them healthy.
        var reply = new RankReply { Strategy = _bandit.Name };
        reply.Ranked.AddRange(sampled
            .OrderByDescending(s => s.Available)
            .ThenByDescending(s => s.Sample)
            .Select(s => s.Arm));
        return reply;
    }

    public async Task<RecordOutcomeReply> RecordOutcomeAsync(InteractionCompleted request, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var posteriors = await PosteriorsAsync(cancellationToken);
            var group = KeyOf(request.Tenant, request.Agent, request.TaskType, new ArmRef());
            var changed = posteriors
                .Where(p => p.Key.InGroupOf(group))
                .ToDictionary(p => p.Key, p => _bandit.Decay(p.Value));
            foreach (var attempt in request.Attempts)
            {
                var key = KeyOf(request.Tenant, request.Agent, request.TaskType, attempt.Arm);
                // An arm never ranked in this process (an outcome replayed after a restart) gets a neutral prior.
                var posterior = changed.GetValueOrDefault(key) ?? _bandit.Prior(declaredQuality: 0.5, relativeCost: 0);
                var utility = attempt.Success ? _bandit.Utility(request.Quality, request.CostUsd, request.ReferenceCostUsd) : 0;
                changed[key] = DiscountedThompsonSampling.Observe(posterior, utility);
            }

            if (!await _store.TryApplyAsync(request.InteractionId, changed, cancellationToken))
            {
                return new RecordOutcomeReply { Recorded = false };
            }

            foreach (var (key, posterior) in changed)
            {
                posteriors[key] = posterior;
            }

            return new RecordOutcomeReply { Recorded = true };
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<ScoresReply> GetScoresAsync(GetScoresRequest request, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var posteriors = await PosteriorsAsync(cancellationToken);
            var reply = new ScoresReply();
            reply.Scores.AddRange(posteriors
                .Where(p => p.Key.Tenant == TenantOf(request.Tenant) && p.Key.Agent == request.Agent
                            && (request.TaskType.Length == 0 || p.Key.TaskType == request.TaskType))
                .OrderBy(p => p.Key.TaskType, StringComparer.Ordinal)
                .ThenByDescending(p => p.Value.Mean)
                .Select(p => new ArmScore
                {
                    Arm = new ArmRef { Provider = p.Key.Provider, Model = p.Key.Model },
                    TaskType = p.Key.TaskType,
                    Score = p.Value.Mean,
                    Pulls = p.Value.Pulls,
                }));
            return reply;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>The posteriors, loaded from the store on first use. Call under the gate.</summary>
    private async Task<Dictionary<ArmKey, ArmPosterior>> PosteriorsAsync(CancellationToken cancellationToken) =>
        _posteriors ??= new Dictionary<ArmKey, ArmPosterior>(await _store.LoadAllAsync(cancellationToken));

    private static ArmKey KeyOf(string tenant, string agent, string taskType, ArmRef arm) =>
        new(TenantOf(tenant), agent, taskType, arm.Provider, arm.Model);

    private static string TenantOf(string tenant) => string.IsNullOrEmpty(tenant) ? Tenancy.DefaultTenant : tenant;
}
