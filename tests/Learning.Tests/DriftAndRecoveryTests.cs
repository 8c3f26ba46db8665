namespace PersistentAgents.Learning.Tests;

public sealed class DriftAndRecoveryTests
{
    // λ = 0 and equal prices: utility is success rate × quality. Leader 0.95 × 0.9, runner-up 0.95 × 0.8.
    private static SimulatedArm[] Arms() =>
    [
        new("leader", SuccessRate: 0.95, Quality: 0.9, PricePerMtok: 1, PriorQuality: 0.8),
        new("runner-up", SuccessRate: 0.95, Quality: 0.8, PricePerMtok: 1, PriorQuality: 0.8),
        new("weak", SuccessRate: 0.9, Quality: 0.4, PricePerMtok: 1, PriorQuality: 0.8),
    ];

    [Fact]
    public async Task A_quality_drop_without_a_single_failure_moves_the_traffic_within_50_rounds()
    {
        int leaderBefore = 0, leaderLate = 0;
        const int Runs = 10;
        for (var seed = 1; seed <= Runs; seed++)
        {
            using var simulation = new BanditSimulation(seed, "quality-first", Arms());
            leaderBefore += (await simulation.PlayAsync(300)).Skip(250).Count(m => m == "leader");

            simulation.ChangeTruth("leader", successRate: 0.95, quality: 0.5);
            leaderLate += (await simulation.PlayAsync(50)).Skip(30).Count(m => m == "leader");
        }

        Assert.True(leaderBefore >= Runs * 50 * 0.8, $"precondition: the leader took {leaderBefore} of {Runs * 50} rounds before the drop");
        Assert.True(leaderLate <= Runs * 20 * 0.1, $"the degraded leader still took {leaderLate} of rounds 31-50 after the drop ({Runs} runs)");
    }

    [Fact]
    public async Task A_provider_that_fails_every_call_is_held_down_and_wins_its_traffic_back_when_it_recovers()
    {
        using var simulation = new BanditSimulation(seed: 21, "quality-first", Arms());
        await simulation.PlayAsync(300);

        simulation.ChangeTruth("leader", successRate: 0, quality: 0.9);
        var outage = await simulation.PlayAsync(200);
        // Held down: only the periodic probes rank it first.
        Assert.InRange(outage.Skip(20).Count(m => m == "leader"), 1, 180 / 20);

        simulation.ChangeTruth("leader", successRate: 0.95, quality: 0.9);
        var recovered = await simulation.PlayAsync(100);
        Assert.True(recovered.Skip(50).Count(m => m == "leader") >= 40, $"the recovered leader did not win back its traffic: {string.Join(",", recovered.Select(m => m[0]))}");
    }
}
