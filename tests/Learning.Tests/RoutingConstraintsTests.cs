using Grpc.Core;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Tests;

public sealed class RoutingConstraintsTests
{
    private static LearningService NewService(int seed = 1) =>
        new(new InMemoryLearningStateStore(), Options.Create(new LearningOptions()), new Random(seed));

    private static CandidateArm Candidate(string model, double pricePerMtok = 1, int contextWindow = 128_000, params string[] capabilities) => new()
    {
        Arm = new ArmRef { Provider = "p", Model = model },
        InputPricePerMtok = pricePerMtok,
        OutputPricePerMtok = pricePerMtok,
        PriorQuality = 0.8,
        Available = true,
        ContextWindow = contextWindow,
        Capabilities = { capabilities },
    };

    [Fact]
    public async Task Arms_that_cannot_take_the_prompt_are_excluded_before_sampling_with_the_reason()
    {
        using var service = NewService();
        var request = new RankRequest { Agent = "a", TaskType = "t", EstimatedInputTokens = 50_000, RequiredCapabilities = { "json" } };
        request.Candidates.Add(Candidate("small-window", contextWindow: 32_000, capabilities: "json"));
        request.Candidates.Add(Candidate("no-json", contextWindow: 200_000));
        request.Candidates.Add(Candidate("fits", contextWindow: 200_000, capabilities: "json"));

        for (var i = 0; i < 20; i++)
        {
            var reply = await service.RankAsync(request, CancellationToken.None);

            Assert.Equal(["fits"], reply.Ranked.Select(a => a.Model));
            Assert.Equal(
                ["no-json:capability", "small-window:context-window"],
                reply.Excluded.Select(e => $"{e.Arm.Model}:{e.Reason}").Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public async Task Arms_that_would_cost_more_than_the_remaining_budget_are_excluded()
    {
        using var service = NewService();
        // 1,000 input + 1,000 output tokens: 0.0002 USD at 0.1 per 1M, 0.02 USD at 10 per 1M.
        var request = new RankRequest { Agent = "a", TaskType = "t", EstimatedInputTokens = 1_000, EstimatedOutputTokens = 1_000, HasBudget = true, RemainingBudgetUsd = 0.001 };
        request.Candidates.Add(Candidate("cheap", pricePerMtok: 0.1));
        request.Candidates.Add(Candidate("premium", pricePerMtok: 10));

        var reply = await service.RankAsync(request, CancellationToken.None);

        Assert.Equal(["cheap"], reply.Ranked.Select(a => a.Model));
        Assert.Equal("budget", Assert.Single(reply.Excluded).Reason);

        request.HasBudget = false;
        Assert.Equal(2, (await service.RankAsync(request, CancellationToken.None)).Ranked.Count);
    }

    [Theory]
    [InlineData("quality-first", 0)]
    [InlineData("balanced", 0.25)]
    [InlineData("cost-first", 0.6)]
    [InlineData("0.4", 0.4)]
    public async Task The_policy_sets_the_cost_weight(string policy, double lambda)
    {
        using var service = NewService();
        var request = new RankRequest { Agent = "a", TaskType = "t", Policy = policy, Candidates = { Candidate("m") } };

        var reply = await service.RankAsync(request, CancellationToken.None);

        Assert.Equal(lambda, reply.CostWeight);
    }

    [Theory]
    [InlineData("cheapest")]
    [InlineData("-1")]
    [InlineData("NaN")]
    [InlineData("11")]
    public async Task An_unknown_policy_is_refused_naming_the_field(string policy)
    {
        using var service = NewService();
        var request = new RankRequest { Agent = "a", TaskType = "t", Policy = policy, Candidates = { Candidate("m") } };

        var error = await Assert.ThrowsAsync<RpcException>(() => service.RankAsync(request, CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith("policy: ", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Easy_and_hard_prompts_are_learned_apart_so_easy_ones_go_to_the_cheap_model()
    {
        // The cheap model is as good as the strong one on simple prompts and poor on complex ones.
        var store = new InMemoryLearningStateStore();
        using var service = new LearningService(store, Options.Create(new LearningOptions()), new Random(4));
        var world = new Random(40);
        var simpleToCheap = 0;
        var complexToStrong = 0;
        for (var i = 0; i < 800; i++)
        {
            var complexity = world.NextDouble();
            var complex = complexity >= 0.5;
            var request = new RankRequest { Agent = "a", TaskType = "t", EstimatedInputTokens = 500, Policy = "balanced", Complexity = complexity };
            request.Candidates.Add(Candidate("cheap", pricePerMtok: 0.2));
            request.Candidates.Add(Candidate("strong", pricePerMtok: 5));
            var route = await service.RankAsync(request, CancellationToken.None);
            var first = route.Ranked[0];
            var quality = first.Model == "strong" ? 0.9 : complex ? 0.3 : 0.88;
            if (i >= 600)
            {
                simpleToCheap += !complex && first.Model == "cheap" ? 1 : 0;
                complexToStrong += complex && first.Model == "strong" ? 1 : 0;
            }

            var cost = first.Model == "strong" ? 0.005 : 0.0002;
            await service.RecordOutcomeAsync(
                new InteractionCompleted
                {
                    InteractionId = $"i-{i}", Agent = "a", TaskType = "t", Context = route.Context, Chosen = first, Success = true,
                    Quality = quality, CostUsd = cost, ReferenceCostUsd = 0.005, CostWeight = route.CostWeight,
                    Attempts = { new AttemptOutcome { Arm = first, Success = true } },
                },
                CancellationToken.None);
        }

        // About 100 of each kind in the last 200 rounds.
        Assert.True(simpleToCheap >= 85, $"only {simpleToCheap} simple prompts went to the cheap model");
        Assert.True(complexToStrong >= 85, $"only {complexToStrong} complex prompts went to the strong model");
    }
}
