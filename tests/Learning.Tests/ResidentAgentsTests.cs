using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Tests;

public sealed class ResidentAgentsTests
{
    private static readonly SimulatedArm[] Arms =
    [
        new("good", SuccessRate: 1, Quality: 0.9, PricePerMtok: 1),
        new("fair", SuccessRate: 1, Quality: 0.6, PricePerMtok: 1),
    ];

    [Fact]
    public async Task Only_the_most_recently_used_agents_stay_in_memory_and_a_let_go_agent_keeps_what_it_learned()
    {
        var store = new InMemoryLearningStateStore();
        using var service = new LearningService(store, Options.Create(new LearningOptions { ResidentAgents = 2 }), new Random(1));
        for (var agent = 0; agent < 5; agent++)
        {
            for (var round = 0; round < 3; round++)
            {
                await PlayAsync(service, $"agent-{agent}", $"agent-{agent}-{round}");
            }

            Assert.InRange(service.ResidentAgents, 1, 2);
        }

        // agent-0 was let go three agents ago: its three outcomes come back from the store.
        var scores = await service.GetScoresAsync(new GetScoresRequest { Tenant = BanditSimulation.Tenant, Agent = "agent-0" }, CancellationToken.None);
        Assert.Equal(3, scores.Scores.Sum(s => s.Pulls));
        Assert.Equal(2, service.ResidentAgents);

        await PlayAsync(service, "agent-0", "agent-0-3");
        scores = await service.GetScoresAsync(new GetScoresRequest { Tenant = BanditSimulation.Tenant, Agent = "agent-0" }, CancellationToken.None);
        Assert.Equal(4, scores.Scores.Sum(s => s.Pulls));
    }

    private static async Task PlayAsync(LearningService service, string agent, string interactionId)
    {
        var request = BanditSimulation.RankRequestFor(Arms, "quality-first");
        request.Agent = agent;
        var ranked = await service.RankAsync(request, CancellationToken.None);
        var outcome = new InteractionCompleted
        {
            InteractionId = interactionId, Tenant = BanditSimulation.Tenant, Agent = agent, TaskType = BanditSimulation.TaskType,
            Success = true, Quality = 0.8, CostUsd = 0.001, ReferenceCostUsd = 0.001, Context = ranked.Context, Chosen = ranked.Ranked[0], CostWeight = ranked.CostWeight,
        };
        outcome.Attempts.Add(new AttemptOutcome { Arm = ranked.Ranked[0], Success = true });
        Assert.True((await service.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
    }
}
