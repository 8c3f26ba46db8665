using Grpc.Core;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Tests;

public sealed class FeedbackAndHistoryTests
{
    private static readonly SimulatedArm[] TwoArms =
    [
        new("a", SuccessRate: 1, Quality: 0.8, PricePerMtok: 1),
        new("b", SuccessRate: 1, Quality: 0.8, PricePerMtok: 1),
    ];

    private static FeedbackRecorded FeedbackOn(string interactionId, string model, double score) => new()
    {
        InteractionId = interactionId,
        Tenant = BanditSimulation.Tenant,
        Agent = BanditSimulation.Agent,
        TaskType = BanditSimulation.TaskType,
        Context = "simple",
        Arm = new ArmRef { Provider = "sim", Model = model },
        Score = score,
    };

    private static async Task<ArmScore> ScoreOfAsync(BanditSimulation simulation, string model) =>
        (await simulation.Service.GetScoresAsync(new GetScoresRequest { Tenant = BanditSimulation.Tenant, Agent = BanditSimulation.Agent }, CancellationToken.None))
        .Scores.Single(s => s.Arm.Model == model);

    [Fact]
    public async Task Late_feedback_moves_the_quality_of_the_arm_that_served_once_and_a_duplicate_is_ignored()
    {
        using var simulation = new BanditSimulation(seed: 9, "balanced", TwoArms);
        await simulation.PlayAsync(20);
        var other = await ScoreOfAsync(simulation, "b");
        var before = await ScoreOfAsync(simulation, "a");

        var first = await simulation.Service.RecordFeedbackAsync(FeedbackOn("interaction-3", "a", 0), CancellationToken.None);
        var afterFirst = await ScoreOfAsync(simulation, "a");
        var duplicate = await simulation.Service.RecordFeedbackAsync(FeedbackOn("interaction-3", "a", 0), CancellationToken.None);
        var afterDuplicate = await ScoreOfAsync(simulation, "a");

        Assert.True(first.Recorded);
        Assert.False(duplicate.Recorded);
        Assert.True(afterFirst.MeanQuality < before.MeanQuality, $"quality {before.MeanQuality} -> {afterFirst.MeanQuality}");
        Assert.Equal(before.SuccessRate, afterFirst.SuccessRate);
        Assert.Equal(afterFirst, afterDuplicate);
        Assert.Equal(other, await ScoreOfAsync(simulation, "b"));
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public async Task A_score_outside_0_to_1_is_refused_naming_the_field(double score)
    {
        using var simulation = new BanditSimulation(seed: 9, "balanced", TwoArms);

        var error = await Assert.ThrowsAsync<RpcException>(() => simulation.Service.RecordFeedbackAsync(FeedbackOn("x", "a", score), CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith("score: ", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_history_holds_every_decision_with_the_scores_after_it_newest_first_and_shares_add_up()
    {
        using var simulation = new BanditSimulation(seed: 2, "balanced", TwoArms);
        var chosen = await simulation.PlayAsync(30);

        var history = await simulation.Service.GetHistoryAsync(
            new GetHistoryRequest { Tenant = BanditSimulation.Tenant, Agent = BanditSimulation.Agent, Limit = 50 }, CancellationToken.None);
        var scores = await simulation.Service.GetScoresAsync(
            new GetScoresRequest { Tenant = BanditSimulation.Tenant, Agent = BanditSimulation.Agent }, CancellationToken.None);

        Assert.Equal(30, history.Selections.Count);
        Assert.Equal(Enumerable.Range(1, 30).Reverse().Select(i => $"interaction-{i}"), history.Selections.Select(s => s.InteractionId));
        Assert.Equal(Enumerable.Reverse(chosen), history.Selections.Select(s => s.Chosen.Model));
        Assert.All(history.Selections, s => Assert.Equal(2, s.Scores.Count));
        Assert.Equal(1, scores.Shares.Sum(s => s.Share), precision: 9);
        Assert.Equal(chosen.Count(m => m == "a") / 30.0, scores.Shares.SingleOrDefault(s => s.Arm.Model == "a")?.Share ?? 0, precision: 9);
    }

    [Fact]
    public async Task A_history_limit_above_the_maximum_is_refused()
    {
        using var simulation = new BanditSimulation(seed: 2, "balanced", TwoArms);

        var error = await Assert.ThrowsAsync<RpcException>(() => simulation.Service.GetHistoryAsync(
            new GetHistoryRequest { Agent = BanditSimulation.Agent, Limit = LearningService.MaxHistoryLimit + 1 }, CancellationToken.None));

        Assert.StartsWith("limit: ", error.Status.Detail, StringComparison.Ordinal);
    }
}
