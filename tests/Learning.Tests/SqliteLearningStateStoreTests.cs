using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Learning.Embedded;

namespace PersistentAgents.Learning.Tests;

public sealed class SqliteLearningStateStoreTests
{
    [Fact]
    public async Task Applied_posteriors_are_read_back_by_a_new_store_over_the_same_file()
    {
        using var folder = new TempFolder();
        var path = folder.File("learning.db");
        var good = new ArmKey("acme", "router", "classify", "openai", "gpt-small");
        var other = new ArmKey("acme", "router", "classify", "anthropic", "haiku");
        var written = new Dictionary<ArmKey, ArmPosterior>
        {
            [good] = new(2.6, 1.4, 3.25, 0.5, 4),
            [other] = new(2.0, 2.0, 0, 0.97, 1),
        };

        var writer = new SqliteLearningStateStore(new SqliteDatabase(path, SqliteLearningStateStore.Schema));
        Assert.True(await writer.TryApplyAsync("interaction-1", written, CancellationToken.None));
        Assert.True(await writer.TryApplyAsync("interaction-2", new Dictionary<ArmKey, ArmPosterior> { [good] = written[good] with { Successes = 4.1, Pulls = 5 } }, CancellationToken.None));

        var reader = new SqliteLearningStateStore(new SqliteDatabase(path, SqliteLearningStateStore.Schema));
        var loaded = await reader.LoadAllAsync(CancellationToken.None);

        Assert.Equal(2, loaded.Count);
        Assert.Equal(written[good] with { Successes = 4.1, Pulls = 5 }, loaded[good]);
        Assert.Equal(written[other], loaded[other]);
    }

    [Fact]
    public async Task A_duplicate_interaction_id_returns_false_and_writes_nothing()
    {
        using var folder = new TempFolder();
        var path = folder.File("learning.db");
        var key = new ArmKey("default", "agent", "chat", "p", "m");
        var store = new SqliteLearningStateStore(new SqliteDatabase(path, SqliteLearningStateStore.Schema));
        Assert.True(await store.TryApplyAsync("same", new Dictionary<ArmKey, ArmPosterior> { [key] = new(1, 1, 1, 0, 1) }, CancellationToken.None));

        var again = await store.TryApplyAsync("same", new Dictionary<ArmKey, ArmPosterior> { [key] = new(1, 1, 9, 9, 99) }, CancellationToken.None);

        Assert.False(again);
        var restarted = new SqliteLearningStateStore(new SqliteDatabase(path, SqliteLearningStateStore.Schema));
        Assert.Equal(new ArmPosterior(1, 1, 1, 0, 1), (await restarted.LoadAllAsync(CancellationToken.None))[key]);
    }

    [Fact]
    public async Task A_learning_service_over_sqlite_remembers_what_it_learned_after_a_restart()
    {
        using var folder = new TempFolder();
        var path = folder.File("learning.db");
        var arms = new SimulatedArm[] { new("a", 1, 0.9, 1), new("b", 1, 0.2, 1) };
        var outcome = new Contracts.V1.InteractionCompleted { InteractionId = "i-1", Agent = "agent", TaskType = "chat", Success = true, Quality = 0.9 };
        outcome.Attempts.Add(new Contracts.V1.AttemptOutcome { Arm = arms[0].Ref, Success = true });
        var scoresRequest = new Contracts.V1.GetScoresRequest { Agent = "agent" };
        var options = Microsoft.Extensions.Options.Options.Create(new LearningOptions());

        Contracts.V1.ScoresReply before;
        using (var service = new LearningService(new SqliteLearningStateStore(new SqliteDatabase(path, SqliteLearningStateStore.Schema)), options, new Random(1)))
        {
            var rank = BanditSimulation.RankRequestFor(arms);
            rank.Tenant = string.Empty;
            rank.Agent = "agent";
            rank.TaskType = "chat";
            await service.RankAsync(rank, CancellationToken.None);
            Assert.True((await service.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
            before = await service.GetScoresAsync(scoresRequest, CancellationToken.None);
        }

        using var restarted = new LearningService(new SqliteLearningStateStore(new SqliteDatabase(path, SqliteLearningStateStore.Schema)), options, new Random(2));
        Assert.Equal(before, await restarted.GetScoresAsync(scoresRequest, CancellationToken.None));
        Assert.False((await restarted.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
        Assert.Equal(2, before.Scores.Count);
    }
}
