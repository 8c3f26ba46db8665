using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Tests;

public sealed class LearningServiceTests
{
    // Equal prices and λ = 0, so an arm's utility is its success rate times its quality: 0.855, 0.51, 0.245.
    private static readonly SimulatedArm[] ThreeArms =
    [
        new("weak", SuccessRate: 0.7, Quality: 0.35, PricePerMtok: 1),
        new("good", SuccessRate: 0.95, Quality: 0.9, PricePerMtok: 1),
        new("fair", SuccessRate: 0.85, Quality: 0.6, PricePerMtok: 1),
    ];

    private const string CostBlind = "quality-first";

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Converges_to_the_best_arm_on_a_stationary_problem(int seed)
    {
        using var simulation = new BanditSimulation(seed, CostBlind, ThreeArms);

        var chosen = await simulation.PlayAsync(200);

        var best = chosen.Skip(150).Count(m => m == "good");
        Assert.True(best >= 40, $"the best arm was ranked first in {best} of the last 50 rounds");
    }

    [Fact]
    public async Task Follows_drift_when_the_best_arm_goes_bad()
    {
        // A runner-up worth switching to (utility 0.675); the share is pooled over 20 seeded runs so that
        // it measures the bandit, not the luck of one run.
        SimulatedArm[] arms =
        [
            new("weak", SuccessRate: 0.7, Quality: 0.35, PricePerMtok: 1),
            new("good", SuccessRate: 0.95, Quality: 0.9, PricePerMtok: 1),
            new("runner-up", SuccessRate: 0.9, Quality: 0.75, PricePerMtok: 1),
        ];
        int beforeChange = 0, lateAfterChange = 0, runnerUpLate = 0;
        const int Runs = 20;
        for (var seed = 100; seed < 100 + Runs; seed++)
        {
            using var simulation = new BanditSimulation(seed, CostBlind, arms);
            var before = await simulation.PlayAsync(150);
            beforeChange += before.Skip(100).Count(m => m == "good");

            simulation.ChangeTruth("good", successRate: 0, quality: 0.1);
            var after = await simulation.PlayAsync(50);
            lateAfterChange += after.Skip(30).Count(m => m == "good");
            runnerUpLate += after.Skip(30).Count(m => m == "runner-up");
        }

        var shareBefore = beforeChange / (Runs * 50.0);
        var shareLate = lateAfterChange / (Runs * 20.0);
        Assert.True(shareBefore >= 0.7, $"precondition: the best arm took only {shareBefore:P0} of the traffic before the change");
        Assert.True(shareLate < 0.2, $"the degraded arm still took {shareLate:P0} of rounds 31-50 after the change");
        Assert.True(runnerUpLate > lateAfterChange * 2, "the traffic should have moved to the runner-up");
    }

    [Theory]
    [InlineData(0.0, "strong")]
    [InlineData(0.8, "cheap")]
    public async Task Cost_weight_decides_between_a_cheap_and_a_strong_arm(double costWeight, string expectedWinner)
    {
        SimulatedArm[] arms =
        [
            new("cheap", SuccessRate: 1, Quality: 0.75, PricePerMtok: 0.1, PriorQuality: 0.75),
            new("strong", SuccessRate: 1, Quality: 0.9, PricePerMtok: 1, PriorQuality: 0.9),
        ];
        using var simulation = new BanditSimulation(seed: 11, costWeight.ToString(System.Globalization.CultureInfo.InvariantCulture), arms);

        var chosen = await simulation.PlayAsync(150);

        var wins = chosen.Skip(100).Count(m => m == expectedWinner);
        Assert.True(wins >= 30, $"{expectedWinner} was ranked first in only {wins} of the last 50 rounds at λ={costWeight}");
        var scores = await simulation.Service.GetScoresAsync(
            new GetScoresRequest
            {
                Tenant = BanditSimulation.Tenant, Agent = BanditSimulation.Agent, TaskType = BanditSimulation.TaskType,
                Policy = costWeight.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
            CancellationToken.None);
        Assert.Equal(expectedWinner, scores.Scores[0].Arm.Model);
    }

    [Fact]
    public async Task Recording_the_same_interaction_twice_applies_it_once()
    {
        using var simulation = new BanditSimulation(seed: 5, "balanced", ThreeArms);
        await simulation.PlayAsync(10);
        var scoresRequest = new GetScoresRequest { Tenant = BanditSimulation.Tenant, Agent = BanditSimulation.Agent };
        var outcome = new InteractionCompleted
        {
            InteractionId = "duplicate-me",
            Tenant = BanditSimulation.Tenant,
            Agent = BanditSimulation.Agent,
            TaskType = BanditSimulation.TaskType,
            Success = true,
            Quality = 0.8,
            CostUsd = 0.001,
            ReferenceCostUsd = 0.01,
        };
        outcome.Attempts.Add(new AttemptOutcome { Arm = ThreeArms[0].Ref, Success = true });

        var first = await simulation.Service.RecordOutcomeAsync(outcome, CancellationToken.None);
        var afterFirst = await simulation.Service.GetScoresAsync(scoresRequest, CancellationToken.None);
        var second = await simulation.Service.RecordOutcomeAsync(outcome.Clone(), CancellationToken.None);
        var afterSecond = await simulation.Service.GetScoresAsync(scoresRequest, CancellationToken.None);

        Assert.True(first.Recorded);
        Assert.False(second.Recorded);
        Assert.Equal(3, afterFirst.Scores.Count);
        Assert.Equal(afterFirst.Scores, afterSecond.Scores);
        Assert.Equal(11, simulation.Store.AppliedCount);
    }

    [Fact]
    public async Task A_duplicate_seen_by_a_fresh_service_over_the_same_store_is_ignored_too()
    {
        var store = new InMemoryLearningStateStore();
        var outcome = new InteractionCompleted { InteractionId = "once", Agent = "a", TaskType = "t", Success = true, Quality = 1 };
        outcome.Attempts.Add(new AttemptOutcome { Arm = new ArmRef { Provider = "p", Model = "m" }, Success = true });
        var request = new GetScoresRequest { Agent = "a" };

        using (var first = new LearningService(store, Options.Create(new LearningOptions()), new Random(1)))
        {
            Assert.True((await first.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
        }

        using var restarted = new LearningService(store, Options.Create(new LearningOptions()), new Random(2));
        var before = await restarted.GetScoresAsync(request, CancellationToken.None);
        Assert.False((await restarted.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
        var after = await restarted.GetScoresAsync(request, CancellationToken.None);

        Assert.Equal(1, Assert.Single(after.Scores).Pulls);
        Assert.Equal(before.Scores, after.Scores);
    }

    [Fact]
    public async Task Unavailable_candidates_are_ranked_after_available_ones()
    {
        using var service = new LearningService(new InMemoryLearningStateStore(), Options.Create(new LearningOptions()), new Random(3));
        var request = new RankRequest { Tenant = "acme", Agent = "router", TaskType = "chat" };
        request.Candidates.Add(Candidate("open-circuit-best", quality: 0.99, available: false));
        request.Candidates.Add(Candidate("weak-a", quality: 0.05, available: true));
        request.Candidates.Add(Candidate("open-circuit-other", quality: 0.95, available: false));
        request.Candidates.Add(Candidate("weak-b", quality: 0.1, available: true));

        for (var i = 0; i < 50; i++)
        {
            var reply = await service.RankAsync(request, CancellationToken.None);

            Assert.Equal(4, reply.Ranked.Count);
            Assert.Equal(["weak-a", "weak-b"], reply.Ranked.Take(2).Select(a => a.Model).Order(StringComparer.Ordinal));
            Assert.Equal(["open-circuit-best", "open-circuit-other"], reply.Ranked.Skip(2).Select(a => a.Model).Order(StringComparer.Ordinal));
        }

        static CandidateArm Candidate(string model, double quality, bool available) => new()
        {
            Arm = new ArmRef { Provider = "p", Model = model },
            InputPricePerMtok = 1,
            OutputPricePerMtok = 1,
            PriorQuality = quality,
            Available = available,
        };
    }
}
