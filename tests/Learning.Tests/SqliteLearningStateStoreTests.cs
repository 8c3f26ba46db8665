using PersistentAgents.Contracts.V1;
using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Learning.Embedded;

namespace PersistentAgents.Learning.Tests;

public sealed class SqliteLearningStateStoreTests
{
    private static readonly ArmKey Good = new("acme", "router", "classify", "simple", "openai", "gpt-small");
    private static readonly ArmKey Other = new("acme", "router", "classify", "simple", "anthropic", "haiku");

    private static SqliteLearningStateStore Open(string path, int historyPerAgent = 5_000) =>
        new(new SqliteDatabase(path, SqliteLearningStateStore.Schema), historyPerAgent);

    private static Selection SelectionOf(string id) => new()
    {
        InteractionId = id,
        TaskType = "classify",
        Context = "simple",
        Chosen = new ArmRef { Provider = Good.Provider, Model = Good.Model },
        Success = true,
        Quality = 0.8,
        Scores = { new ArmScore { Arm = new ArmRef { Provider = Good.Provider, Model = Good.Model }, TaskType = "classify", Score = 0.7 } },
    };

    [Fact]
    public async Task Arms_history_experiments_and_tallies_are_read_back_by_a_new_store_over_the_same_file()
    {
        using var folder = new TempFolder();
        var path = folder.File("learning.db");
        var good = new ArmState(0.8, 3.25, 0.5, 3.25, 2.9, 2.6, 0.3, 4, 0.9, 0.85, 4, 0, 3, 0, 0.25);
        var other = new ArmState(0.6, 0, 0.97, 0, 0, 0, 0, 1, 0, 0.6, 1, 2, 0, 1, 1);
        var experiment = new Experiment
        {
            Tenant = "acme", Agent = "router", Name = "lambda-test",
            Variants = { new ExperimentVariant { Name = "a", Weight = 1 }, new ExperimentVariant { Name = "b", Weight = 1, Policy = "cost-first" } },
        };
        var variant = new VariantKey("acme", "router", "lambda-test", "b");

        var writer = Open(path);
        await writer.PutExperimentAsync(experiment, CancellationToken.None);
        Assert.True(await writer.TryApplyAsync(new LearningUpdate("interaction-1", new Dictionary<ArmKey, ArmState> { [Good] = good, [Other] = other }, SelectionOf("interaction-1")), CancellationToken.None));
        Assert.True(await writer.TryApplyAsync(
            new LearningUpdate("interaction-2", new Dictionary<ArmKey, ArmState> { [Good] = good with { Successes = 4.1, Pulls = 5 } }, SelectionOf("interaction-2"),
                KeyValuePair.Create(variant, VariantTally.Empty.Add(true, 0.8, 0.01, 0.7))),
            CancellationToken.None));

        var reader = Open(path);
        var loaded = await reader.LoadAsync(CancellationToken.None);
        var arms = await reader.LoadArmsAsync(Good.Tenant, Good.Agent, CancellationToken.None);

        Assert.Equal(2, arms.Count);
        Assert.Equal(good with { Successes = 4.1, Pulls = 5 }, arms[Good]);
        Assert.Equal(other, arms[Other]);
        Assert.Empty(await reader.LoadArmsAsync(Good.Tenant, "someone-else", CancellationToken.None));
        Assert.Equal(experiment, Assert.Single(loaded.Experiments));
        Assert.Equal(VariantTally.Empty.Add(true, 0.8, 0.01, 0.7), loaded.Tallies[variant]);
        var history = await reader.HistoryAsync("acme", "router", "", 10, CancellationToken.None);
        Assert.Equal(["interaction-2", "interaction-1"], history.Select(s => s.InteractionId));
        Assert.Equal(SelectionOf("interaction-1"), history[1]);
        Assert.Empty(await reader.HistoryAsync("acme", "router", "other-task", 10, CancellationToken.None));
    }

    [Fact]
    public async Task A_duplicate_id_returns_false_and_writes_nothing()
    {
        using var folder = new TempFolder();
        var path = folder.File("learning.db");
        var store = Open(path);
        var first = ArmState.New(0.5) with { Successes = 1, Pulls = 1 };
        Assert.True(await store.TryApplyAsync(new LearningUpdate("same", new Dictionary<ArmKey, ArmState> { [Good] = first }, SelectionOf("same")), CancellationToken.None));

        var again = await store.TryApplyAsync(
            new LearningUpdate("same", new Dictionary<ArmKey, ArmState> { [Good] = first with { Successes = 9, Pulls = 99 } }, SelectionOf("same")), CancellationToken.None);

        Assert.False(again);
        var restarted = Open(path);
        Assert.Equal(first, (await restarted.LoadArmsAsync(Good.Tenant, Good.Agent, CancellationToken.None))[Good]);
        Assert.Single(await restarted.HistoryAsync("acme", "router", "", 10, CancellationToken.None));
    }

    [Fact]
    public async Task History_keeps_the_most_recent_selections_per_agent_only()
    {
        using var folder = new TempFolder();
        var store = Open(folder.File("learning.db"), historyPerAgent: 5);
        for (var i = 1; i <= 12; i++)
        {
            await store.TryApplyAsync(new LearningUpdate($"i-{i}", new Dictionary<ArmKey, ArmState> { [Good] = ArmState.New(0.5) }, SelectionOf($"i-{i}")), CancellationToken.None);
        }

        var history = await store.HistoryAsync("acme", "router", "", 100, CancellationToken.None);

        Assert.Equal(["i-12", "i-11", "i-10", "i-9", "i-8"], history.Select(s => s.InteractionId));
    }

    [Fact]
    public async Task Replacing_or_deleting_an_experiment_drops_its_tallies()
    {
        using var folder = new TempFolder();
        var store = Open(folder.File("learning.db"));
        var experiment = new Experiment { Tenant = "acme", Agent = "router", Name = "e", Variants = { new ExperimentVariant { Name = "a", Weight = 1 } } };
        var variant = new VariantKey("acme", "router", "e", "a");
        await store.PutExperimentAsync(experiment, CancellationToken.None);
        await store.TryApplyAsync(new LearningUpdate("i-1", new Dictionary<ArmKey, ArmState> { [Good] = ArmState.New(0.5) }, null, KeyValuePair.Create(variant, VariantTally.Empty.Add(true, 1, 0, 1))), CancellationToken.None);

        await store.PutExperimentAsync(experiment, CancellationToken.None);
        Assert.Empty((await store.LoadAsync(CancellationToken.None)).Tallies);

        Assert.True(await store.DeleteExperimentAsync("acme", "router", "e", CancellationToken.None));
        Assert.False(await store.DeleteExperimentAsync("acme", "router", "e", CancellationToken.None));
        Assert.Empty((await store.LoadAsync(CancellationToken.None)).Experiments);
    }

    [Fact]
    public async Task A_learning_service_over_sqlite_remembers_what_it_learned_after_a_restart()
    {
        using var folder = new TempFolder();
        var path = folder.File("learning.db");
        var arms = new SimulatedArm[] { new("a", 1, 0.9, 1), new("b", 1, 0.2, 1) };
        var outcome = new InteractionCompleted { InteractionId = "i-1", Agent = "agent", TaskType = "chat", Success = true, Quality = 0.9, Context = "simple" };
        outcome.Attempts.Add(new AttemptOutcome { Arm = arms[0].Ref, Success = true });
        var scoresRequest = new GetScoresRequest { Agent = "agent" };
        var options = Microsoft.Extensions.Options.Options.Create(new LearningOptions());

        ScoresReply before;
        using (var service = new LearningService(Open(path), options, new Random(1)))
        {
            var rank = BanditSimulation.RankRequestFor(arms);
            rank.Tenant = string.Empty;
            rank.Agent = "agent";
            rank.TaskType = "chat";
            await service.RankAsync(rank, CancellationToken.None);
            Assert.True((await service.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
            before = await service.GetScoresAsync(scoresRequest, CancellationToken.None);
        }

        using var restarted = new LearningService(Open(path), options, new Random(2));
        Assert.Equal(before, await restarted.GetScoresAsync(scoresRequest, CancellationToken.None));
        Assert.False((await restarted.RecordOutcomeAsync(outcome, CancellationToken.None)).Recorded);
        Assert.Equal(2, before.Scores.Count);
        Assert.Equal(1, Assert.Single(before.Shares).Share);
    }
}
