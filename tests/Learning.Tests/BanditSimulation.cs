using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Tests;

/// <summary>The truth about one arm in a simulation, and how the catalog describes it.</summary>
internal sealed record SimulatedArm(string Model, double SuccessRate, double Quality, double PricePerMtok, double PriorQuality = 0.5)
{
    public ArmRef Ref => new() { Provider = "sim", Model = Model };
}

/// <summary>
/// Drives a <see cref="LearningService"/> the way the gateway does: rank, call the first arm, report the
/// outcome. The bandit and the simulated world draw from two separately seeded generators.
/// </summary>
internal sealed class BanditSimulation : IDisposable
{
    public const string Tenant = "acme";
    public const string Agent = "router";
    public const string TaskType = "classify";
    private const double ReferenceCostUsd = 0.01;

    private readonly Random _world;
    private int _interactions;

    private readonly string _policy;

    public BanditSimulation(int seed, string policy, IReadOnlyList<SimulatedArm> arms, LearningOptions? options = null)
    {
        _policy = policy;
        Arms = [.. arms];
        Store = new InMemoryLearningStateStore();
        Service = new LearningService(Store, Options.Create(options ?? new LearningOptions()), new Random(seed));
        _world = new Random(seed + 7919);
    }

    public List<SimulatedArm> Arms { get; }

    public InMemoryLearningStateStore Store { get; }

    public LearningService Service { get; }

    /// <summary>The first-ranked model of every round played so far.</summary>
    public List<string> Chosen { get; } = [];

    public static RankRequest RankRequestFor(IEnumerable<SimulatedArm> arms, string policy = "balanced", double complexity = 0)
    {
        var request = new RankRequest { Tenant = Tenant, Agent = Agent, TaskType = TaskType, EstimatedInputTokens = 500, Policy = policy, Complexity = complexity };
        request.Candidates.AddRange(arms.Select(a => new CandidateArm
        {
            Arm = a.Ref,
            InputPricePerMtok = a.PricePerMtok,
            OutputPricePerMtok = a.PricePerMtok,
            PriorQuality = a.PriorQuality,
            Available = true,
        }));
        return request;
    }

    /// <summary>Plays <paramref name="rounds"/> rounds; returns the first-ranked model of each.</summary>
    public async Task<List<string>> PlayAsync(int rounds)
    {
        var chosen = new List<string>(rounds);
        for (var i = 0; i < rounds; i++)
        {
            chosen.Add(await PlayRoundAsync());
        }

        return chosen;
    }

    public async Task<string> PlayRoundAsync()
    {
        var ranked = await Service.RankAsync(RankRequestFor(Arms, _policy), CancellationToken.None);
        var first = ranked.Ranked[0];
        var truth = Arms.Single(a => a.Model == first.Model);

        var success = _world.NextDouble() < truth.SuccessRate;
        var quality = Math.Clamp(truth.Quality + ((_world.NextDouble() - 0.5) * 0.1), 0, 1);
        var maxPrice = Arms.Max(a => a.PricePerMtok);
        var outcome = new InteractionCompleted
        {
            InteractionId = $"interaction-{++_interactions}",
            Tenant = Tenant,
            Agent = Agent,
            TaskType = TaskType,
            Success = success,
            Quality = success ? quality : 0,
            CostUsd = ReferenceCostUsd * truth.PricePerMtok / maxPrice,
            ReferenceCostUsd = ReferenceCostUsd,
            Context = ranked.Context,
            Chosen = first,
            CostWeight = ranked.CostWeight,
        };
        outcome.Attempts.Add(new AttemptOutcome { Arm = first, Success = success });
        var reply = await Service.RecordOutcomeAsync(outcome, CancellationToken.None);
        Assert.True(reply.Recorded);

        Chosen.Add(first.Model);
        return first.Model;
    }

    /// <summary>Replaces the truth about one arm, keeping what the catalog says about it.</summary>
    public void ChangeTruth(string model, double successRate, double quality)
    {
        var index = Arms.FindIndex(a => a.Model == model);
        Arms[index] = Arms[index] with { SuccessRate = successRate, Quality = quality };
    }

    public void Dispose() => Service.Dispose();
}
