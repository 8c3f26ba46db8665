using Microsoft.Extensions.Options;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Learning;

namespace PersistentAgents.Bench.Learning.Strategies;

/// <summary>
/// Ours: the project's <see cref="LearningService"/>, through the two calls of <see cref="ILearningApi"/> the agent
/// loop makes: a rank request per interaction, the completed interaction recorded after.
/// </summary>
internal sealed class LearningServiceStrategy : IRoutingStrategy, IDisposable
{
    private const string Tenant = "bench";
    private const string Agent = "sim";
    private const string Policy = "balanced";
    private const int ContextWindow = 128_000;

    private readonly LearningService _service;
    private readonly Scenario _scenario;
    private readonly Dictionary<(string Provider, string Model), Arm> _arms;
    private (int Step, RankReply Reply)? _pending;

    private LearningServiceStrategy(Scenario scenario, LearningService service)
    {
        _scenario = scenario;
        _service = service;
        _arms = scenario.Arms.ToDictionary(a => (a.Provider, a.Model));
    }

    public string Name => ScenarioResult.Ours;

    /// <summary>The strategy name the service reports in its rank replies.</summary>
    public string ServiceStrategy { get; private set; } = string.Empty;

    /// <summary>A fresh service with in-memory state, its Thompson sampling drawn from <paramref name="samplingSeed"/>.</summary>
    public static LearningServiceStrategy Create(Scenario scenario, int samplingSeed) =>
        new(scenario, new LearningService(new InMemoryLearningStateStore(), Options.Create(new LearningOptions()), new Random(samplingSeed)));

    public async ValueTask<IReadOnlyList<Arm>> RankAsync(Step step, CancellationToken cancellationToken)
    {
        var request = new RankRequest
        {
            Tenant = Tenant,
            Agent = Agent,
            TaskType = step.TaskType,
            EstimatedInputTokens = step.InputTokens,
            Policy = Policy,
            Complexity = step.Complexity,
        };
        request.Candidates.AddRange(_scenario.Arms.Select(a => new CandidateArm
        {
            Arm = ArmRefOf(a),
            InputPricePerMtok = a.InputPricePerMtok,
            OutputPricePerMtok = a.OutputPricePerMtok,
            PriorQuality = a.DeclaredQuality,
            Available = true,
            ContextWindow = ContextWindow,
        }));

        var reply = await _service.RankAsync(request, cancellationToken);
        if (reply.Ranked.Count == 0)
        {
            throw new InvalidOperationException($"{_scenario.Name} step {step.Index}: the learning service ranked no arm");
        }

        _pending = (step.Index, reply);
        ServiceStrategy = reply.Strategy;
        return [.. reply.Ranked.Select(r => _arms[(r.Provider, r.Model)])];
    }

    public async ValueTask RecordAsync(Interaction interaction, CancellationToken cancellationToken)
    {
        if (_pending is not { } pending || pending.Step != interaction.Step.Index)
        {
            throw new InvalidOperationException($"{_scenario.Name} step {interaction.Step.Index}: recorded without a ranking");
        }

        var completed = new InteractionCompleted
        {
            InteractionId = $"{_scenario.Name}-{interaction.Step.Index}",
            Tenant = Tenant,
            Agent = Agent,
            TaskType = interaction.Step.TaskType,
            Success = interaction.Success,
            Quality = interaction.Quality,
            CostUsd = interaction.CostUsd,
            ReferenceCostUsd = interaction.ReferenceCostUsd,
            TokensIn = interaction.Step.InputTokens,
            TokensOut = interaction.Step.OutputTokens,
            LatencyMs = interaction.LatencyMs,
            Context = pending.Reply.Context,
            Chosen = ArmRefOf(interaction.Ranked[0]),
            Strategy = pending.Reply.Strategy,
            CostWeight = pending.Reply.CostWeight,
        };
        completed.Attempts.AddRange(interaction.Attempts.Select(a => new AttemptOutcome { Arm = ArmRefOf(a.Arm), Success = a.Success }));
        await _service.RecordOutcomeAsync(completed, cancellationToken);
        _pending = null;
    }

    public void Dispose() => _service.Dispose();

    private static ArmRef ArmRefOf(Arm arm) => new() { Provider = arm.Provider, Model = arm.Model };
}
