using PersistentAgents.Contracts;
using Grpc.Core;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Tests;

public sealed class ExperimentsTests
{
    private static Experiment TwoVariants(string metric = "quality") => new()
    {
        Tenant = "acme",
        Agent = "router",
        Name = "cheap-vs-bandit",
        Metric = metric,
        Variants = { new ExperimentVariant { Name = "control", Weight = 3 }, new ExperimentVariant { Name = "cheap", Weight = 1, Policy = "cost-first" } },
    };

    private static Dictionary<VariantKey, VariantTally> Tallies(params (string Variant, double[] Values)[] variants) =>
        variants.ToDictionary(
            v => new VariantKey("acme", "router", "cheap-vs-bandit", v.Variant),
            v => v.Values.Aggregate(VariantTally.Empty, (tally, value) => tally.Add(true, value, 0.001, value)));

    [Fact]
    public void A_clear_difference_is_significant_and_names_the_winner()
    {
        var random = new Random(3);
        var results = Experiments.Results(TwoVariants(), Tallies(
            ("control", [.. Enumerable.Range(0, 60).Select(_ => 0.8 + ((random.NextDouble() - 0.5) * 0.1))]),
            ("cheap", [.. Enumerable.Range(0, 40).Select(_ => 0.6 + ((random.NextDouble() - 0.5) * 0.1))])));

        var cheap = results.Variants[1];
        Assert.Equal(40, cheap.Interactions);
        Assert.True(cheap.Significant);
        Assert.True(cheap.PValue < 1e-6, $"p = {cheap.PValue}");
        Assert.Equal(1, results.Variants[0].PValue);
        Assert.Equal("control", results.Winner);
    }

    [Fact]
    public void The_same_distribution_is_not_significant_and_too_few_interactions_never_are()
    {
        var random = new Random(5);
        double[] Draw(int n) => [.. Enumerable.Range(0, n).Select(_ => 0.7 + ((random.NextDouble() - 0.5) * 0.2))];

        var same = Experiments.Results(TwoVariants(), Tallies(("control", Draw(200)), ("cheap", Draw(200))));
        var few = Experiments.Results(TwoVariants(), Tallies(("control", [0.9, 0.91, 0.9, 0.92]), ("cheap", [0.1, 0.12, 0.1])));

        Assert.False(same.Variants[1].Significant);
        Assert.True(same.Variants[1].PValue > 0.05, $"p = {same.Variants[1].PValue}");
        Assert.Equal("", same.Winner);
        Assert.False(few.Variants[1].Significant);
    }

    [Fact]
    public async Task Traffic_is_split_by_weight_and_each_outcome_is_tallied_for_its_variant()
    {
        var store = new InMemoryLearningStateStore();
        using var service = new LearningService(store, Options.Create(new LearningOptions()), new Random(8));
        var experiment = TwoVariants();
        experiment.Tenant = "";
        await service.PutExperimentAsync(experiment, CancellationToken.None);
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 400; i++)
        {
            var request = BanditSimulation.RankRequestFor([new SimulatedArm("m", 1, 0.8, 1)]);
            request.Tenant = "";
            var route = await service.RankAsync(request, CancellationToken.None);
            counts[route.Variant] = counts.GetValueOrDefault(route.Variant) + 1;
            Assert.Equal(route.Variant == "cheap" ? CostPolicy.CostFirst : CostPolicy.Balanced, route.CostWeight);
            await service.RecordOutcomeAsync(
                new InteractionCompleted
                {
                    InteractionId = $"i-{i}", Agent = "router", TaskType = request.TaskType, Success = true, Quality = 0.8,
                    Experiment = route.Experiment, Variant = route.Variant, Attempts = { new AttemptOutcome { Arm = route.Ranked[0], Success = true } },
                },
                CancellationToken.None);
        }

        Assert.InRange(counts["control"], 270, 330);
        var results = (await service.GetExperimentsAsync(new GetExperimentsRequest { Agent = "router" }, CancellationToken.None)).Experiments.Single();
        Assert.Equal(counts["control"], results.Variants[0].Interactions);
        Assert.Equal(counts["cheap"], results.Variants[1].Interactions);
    }

    [Fact]
    public async Task Overlapping_experiments_for_one_agent_are_refused()
    {
        using var service = new LearningService(new InMemoryLearningStateStore(), Options.Create(new LearningOptions()), new Random(1));
        await service.PutExperimentAsync(TwoVariants(), CancellationToken.None);
        var second = TwoVariants();
        second.Name = "another";
        second.TaskType = "classify";

        var error = await Assert.ThrowsAsync<RpcException>(() => service.PutExperimentAsync(second, CancellationToken.None));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.StartsWith("taskType: experiment 'cheap-vs-bandit' already covers every task type", error.Status.Detail, StringComparison.Ordinal);
    }
}
