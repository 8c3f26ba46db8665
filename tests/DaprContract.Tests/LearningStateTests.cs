using System.Globalization;
using System.Text.Json;
using Dapr.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Learning;
using PersistentAgents.Learning.Dapr;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>DaprLearningStateStore against the sidecar double's state store: what it sends, and what it gets back.</summary>
public sealed class LearningStateTests : IAsyncLifetime
{
    private const string Store = DaprComponents.LearningState;
    private static readonly ArmKey Good = new("acme", "router", "classify", "simple", "openai", "gpt-small");
    private static readonly ArmKey Other = new("acme", "router", "classify", "simple", "anthropic", "haiku");
    private static readonly ArmKey Billing = new("acme", "billing", "summarize", "complex", "openai", "gpt-small");
    private static readonly string RouterKey = DaprLearningStateStore.AgentKey("acme", "router");
    private static readonly string BillingKey = DaprLearningStateStore.AgentKey("acme", "billing");
    private static readonly string TransactionPath = $"/{SidecarDouble.ServiceName}/ExecuteStateTransaction";

    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private SidecarDouble _sidecar = null!;

    public async Task InitializeAsync() => _sidecar = await SidecarDouble.StartAsync(_clock);

    public async Task DisposeAsync() => await _sidecar.DisposeAsync();

    private DaprLearningStateStore NewStore(int historyPerAgent = 5_000) => new(_sidecar.Client, historyPerAgent);

    private static ArmState Arm(double successes, long pulls) => ArmState.New(0.7) with { Successes = successes, Pulls = pulls, QualitySum = successes * 0.8 };

    private static Selection SelectionOf(string id, string taskType = "classify") => new()
    {
        InteractionId = id,
        At = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero)),
        TaskType = taskType,
        Context = "simple",
        Chosen = new ArmRef { Provider = Good.Provider, Model = Good.Model },
        Success = true,
        Quality = 0.8,
        CostUsd = 0.0012,
        Utility = 0.75,
        Scores = { new ArmScore { Arm = new ArmRef { Provider = Good.Provider, Model = Good.Model }, TaskType = taskType, Context = "simple", Score = 0.7, Pulls = 3 } },
    };

    /// <summary>An outcome: changed arms and a selection for the history.</summary>
    private static LearningUpdate Outcome(string id, params (ArmKey Key, ArmState State)[] arms) =>
        new(id, arms.ToDictionary(a => a.Key, a => a.State), SelectionOf(id));

    /// <summary>Feedback: changed arms only.</summary>
    private static LearningUpdate Feedback(string id, params (ArmKey Key, ArmState State)[] arms) =>
        new(id, arms.ToDictionary(a => a.Key, a => a.State));

    private static string RouterSelection(long number) => DaprLearningStateStore.SelectionKey("acme", "router", number);

    private static Experiment ExperimentOf(string name, params string[] variants)
    {
        var experiment = new Experiment { Tenant = "acme", Agent = "router", Name = name, Metric = "quality" };
        experiment.Variants.AddRange(variants.Select(v => new ExperimentVariant { Name = v, Weight = 1 }));
        return experiment;
    }

    private Selection ProtobufJsonSelection(string key) =>
        Google.Protobuf.JsonParser.Default.Parse<Selection>(System.Text.Encoding.UTF8.GetString(_sidecar.StateValue(Store, key)!));

    private JsonElement Stored(string key) => JsonDocument.Parse(_sidecar.StateValue(Store, key)!).RootElement;

    private List<string> AppliedIds(string key) => [.. Stored(key).GetProperty("appliedIds").EnumerateArray().Select(e => e.GetString()!)];

    private List<StateCall> TransactionOperations => [.. _sidecar.StateCalls.Where(c => c.Method.StartsWith("ExecuteStateTransaction/", StringComparison.Ordinal))];

    private int Transactions => _sidecar.Paths.Count(p => p == TransactionPath);

    private List<StateCall> Writes => [.. _sidecar.StateCalls.Where(c => c.Method is "SaveState" || c.Method.StartsWith("ExecuteStateTransaction", StringComparison.Ordinal))];

    [Fact]
    public async Task Arms_experiments_tallies_and_history_are_read_back_by_a_fresh_store()
    {
        var good = new ArmState(0.8, 3.25, 0.5, 3.25, 2.9, 2.6, 0.3, 4, 0.9, 0.85, 4, 0, 3, 0, 0.25);
        var other = new ArmState(0.6, 0, 0.97, 0, 0, 0, 0, 1, 0, 0.6, 1, 2, 0, 1, 1);
        var experiment = ExperimentOf("lambda-test", "a", "b");
        experiment.CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(_clock.GetUtcNow());
        var variant = new VariantKey("acme", "router", "lambda-test", "b");
        var tally = VariantTally.Empty.Add(true, 0.8, 0.01, 0.7).Add(false, 0, 0.02, 0);
        // Names that would share a key if the parts were not escaped.
        var slashTenant = new ArmKey("a/b", "c", "t", "simple", "p", "m");
        var slashAgent = new ArmKey("a", "b/c", "t", "simple", "p", "m");

        var writer = NewStore();
        await writer.PutExperimentAsync(experiment, CancellationToken.None);
        Assert.True(await writer.TryApplyAsync(Outcome("interaction-1", (Good, good), (Other, other)), CancellationToken.None));
        Assert.True(await writer.TryApplyAsync(
            new LearningUpdate("interaction-2", new Dictionary<ArmKey, ArmState> { [Good] = good with { Successes = 4.1, Pulls = 5 } }, SelectionOf("interaction-2", "summarize"), KeyValuePair.Create(variant, tally)),
            CancellationToken.None));
        Assert.True(await writer.TryApplyAsync(Feedback("slash-1", (slashTenant, Arm(1, 1))), CancellationToken.None));
        Assert.True(await writer.TryApplyAsync(Feedback("slash-2", (slashAgent, Arm(2, 2))), CancellationToken.None));

        var reader = NewStore();
        var loaded = await reader.LoadAsync(CancellationToken.None);
        var arms = await ArmsAsync(reader, Good, slashTenant, slashAgent);

        Assert.Equal(4, arms.Count);
        Assert.Equal(good with { Successes = 4.1, Pulls = 5 }, arms[Good]);
        Assert.Equal(other, arms[Other]);
        Assert.Equal(Arm(1, 1), arms[slashTenant]);
        Assert.Equal(Arm(2, 2), arms[slashAgent]);
        Assert.Equal(experiment, Assert.Single(loaded.Experiments));
        Assert.Equal(KeyValuePair.Create(variant, tally), Assert.Single(loaded.Tallies));

        var history = await reader.HistoryAsync("acme", "router", "", 10, CancellationToken.None);
        Assert.Equal(["interaction-2", "interaction-1"], history.Select(s => s.InteractionId));
        Assert.Equal(SelectionOf("interaction-1"), history[1]);
        Assert.Equal(["interaction-2"], (await reader.HistoryAsync("acme", "router", "summarize", 10, CancellationToken.None)).Select(s => s.InteractionId));
        Assert.Empty(await reader.HistoryAsync("acme", "billing", "", 10, CancellationToken.None));
        Assert.Empty(await reader.HistoryAsync("a/b", "c", "", 10, CancellationToken.None));

        Assert.Equal(
            new[] { "learning/a%2Fb/c", "learning/a/b%2Fc", RouterKey, RouterSelection(0), RouterSelection(1), DaprLearningStateStore.IndexKey }.Order(StringComparer.Ordinal),
            _sidecar.StateKeys(Store));
        Assert.Equal("learning/acme/router/history/1", RouterSelection(1));
        Assert.All(_sidecar.StateCalls, c => Assert.Equal(Store, c.Store));
        Assert.Empty(_sidecar.UnservedPaths);
    }

    [Fact]
    public async Task Loading_an_empty_store_reads_the_index_and_finds_nothing()
    {
        var store = NewStore();
        var loaded = await store.LoadAsync(CancellationToken.None);

        Assert.Empty(loaded.Experiments);
        Assert.Empty(loaded.Tallies);
        var read = Assert.Single(_sidecar.StateCalls);
        Assert.Equal((Store, DaprLearningStateStore.IndexKey, "missing"), (read.Store, read.Key, read.Outcome));
        Assert.Empty(await store.LoadArmsAsync(Good.Tenant, Good.Agent, CancellationToken.None));
    }

    [Fact]
    public async Task Updates_are_written_to_the_agent_key_under_the_etag_they_read_with_first_write()
    {
        var store = NewStore();
        Assert.True(await store.TryApplyAsync(Feedback("1", (Good, Arm(1, 1))), CancellationToken.None));

        // A new agent is listed in the index first, then its document is created: both only if still missing.
        var created = Writes;
        Assert.Equal([DaprLearningStateStore.IndexKey, RouterKey], created.Select(w => w.Key));
        Assert.All(created, w =>
        {
            Assert.Equal(("SaveState", Store, "first-write", "saved"), (w.Method, w.Store, w.Concurrency, w.Outcome));
            Assert.True(string.IsNullOrEmpty(w.Etag), "a new key is created without an ETag");
        });
        var indexed = Assert.Single(Stored(DaprLearningStateStore.IndexKey).GetProperty("agents").EnumerateArray());
        Assert.Equal(("acme", "router"), (indexed.GetProperty("tenant").GetString(), indexed.GetProperty("agent").GetString()));

        Assert.True(await store.TryApplyAsync(Feedback("2", (Good, Arm(2, 2))), CancellationToken.None));
        Assert.True(await NewStore().TryApplyAsync(Feedback("3", (Good, Arm(3, 3))), CancellationToken.None));

        // Later updates write only the agent's document, under the ETag of the read before them.
        var updates = Writes.Skip(created.Count).ToList();
        Assert.Equal([RouterKey, RouterKey], updates.Select(w => w.Key));
        Assert.All(updates, w =>
        {
            Assert.Equal(("SaveState", Store, "first-write", "saved"), (w.Method, w.Store, w.Concurrency, w.Outcome));
            Assert.False(string.IsNullOrEmpty(w.Etag), "an existing key is written under the ETag it was read with");
        });
        Assert.NotEqual(updates[0].Etag, updates[1].Etag);
        Assert.Equal([RouterKey, DaprLearningStateStore.IndexKey], _sidecar.StateKeys(Store));
        Assert.Equal(["1", "2", "3"], AppliedIds(RouterKey));
        Assert.Equal(0, Transactions);
        Assert.Empty(_sidecar.UnservedPaths);
    }

    [Fact]
    public async Task An_outcome_writes_its_document_and_selection_in_one_transaction_and_the_history_keeps_the_newest()
    {
        var store = NewStore(historyPerAgent: 3);
        for (var i = 0; i < 5; i++)
        {
            var id = i.ToString(CultureInfo.InvariantCulture);
            var update = new LearningUpdate(id, new Dictionary<ArmKey, ArmState> { [Good] = Arm(i, i) }, SelectionOf(id, i % 2 == 0 ? "even" : "odd"));
            Assert.True(await store.TryApplyAsync(update, CancellationToken.None));
        }

        Assert.Equal(5, Transactions);
        var operations = TransactionOperations;
        var documents = operations.Where(o => o.Key == RouterKey).ToList();
        Assert.Equal(5, documents.Count);
        Assert.All(documents, o => Assert.Equal(("ExecuteStateTransaction/upsert", Store, "first-write", "saved"), (o.Method, o.Store, o.Concurrency, o.Outcome)));
        Assert.True(string.IsNullOrEmpty(documents[0].Etag), "the first outcome creates the document");
        Assert.All(documents.Skip(1), o => Assert.False(string.IsNullOrEmpty(o.Etag), "later outcomes write it under the ETag they read"));

        // Each selection gets the next number; past the limit, the one that falls out is deleted in the same transaction.
        Assert.Equal([RouterSelection(0), RouterSelection(1), RouterSelection(2), RouterSelection(3), RouterSelection(4)],
            operations.Where(o => o.Method == "ExecuteStateTransaction/upsert" && o.Key != RouterKey).Select(o => o.Key));
        Assert.Equal([RouterSelection(0), RouterSelection(1)], operations.Where(o => o.Method == "ExecuteStateTransaction/delete").Select(o => o.Key));
        Assert.Equal([RouterKey, RouterSelection(2), RouterSelection(3), RouterSelection(4), DaprLearningStateStore.IndexKey], _sidecar.StateKeys(Store));
        Assert.Equal(SelectionOf("4", "even"), ProtobufJsonSelection(RouterSelection(4)));
        Assert.Equal(5, Stored(RouterKey).GetProperty("selectionsRecorded").GetInt64());

        Assert.Equal(["4", "3", "2"], (await store.HistoryAsync("acme", "router", "", 10, CancellationToken.None)).Select(s => s.InteractionId));
        Assert.Equal(["4", "3"], (await store.HistoryAsync("acme", "router", "", 2, CancellationToken.None)).Select(s => s.InteractionId));
        Assert.Equal(["4", "2"], (await store.HistoryAsync("acme", "router", "even", 10, CancellationToken.None)).Select(s => s.InteractionId));
        Assert.Empty(await store.HistoryAsync("acme", "router", "", 0, CancellationToken.None));
        Assert.Equal(["0", "1", "2", "3", "4"], AppliedIds(RouterKey));
    }

    [Fact]
    public async Task A_duplicate_id_returns_false_and_writes_nothing()
    {
        var store = NewStore();
        var first = Arm(1, 1);
        Assert.True(await store.TryApplyAsync(Outcome("same", (Good, first)), CancellationToken.None));
        var writes = Writes.Count;
        var before = _sidecar.StateValue(Store, RouterKey);

        Assert.False(await store.TryApplyAsync(Outcome("same", (Good, Arm(9, 99)), (Billing, Arm(9, 99))), CancellationToken.None));
        Assert.False(await NewStore().TryApplyAsync(Outcome("same", (Good, Arm(9, 99))), CancellationToken.None));
        Assert.False(await store.TryApplyAsync(Feedback("same", (Good, Arm(9, 99))), CancellationToken.None));

        Assert.Equal(writes, Writes.Count);
        Assert.Equal(1, Transactions);
        Assert.Equal(before, _sidecar.StateValue(Store, RouterKey));
        Assert.Null(_sidecar.StateValue(Store, BillingKey));
        Assert.Equal(first, Assert.Single(await NewStore().LoadArmsAsync(Good.Tenant, Good.Agent, CancellationToken.None)).Value);
        Assert.Single(await store.HistoryAsync("acme", "router", "", 10, CancellationToken.None));
    }

    [Fact]
    public async Task An_update_touching_two_agents_is_one_transaction_and_its_id_is_kept_by_its_own_agent()
    {
        var store = NewStore();
        Assert.True(await store.TryApplyAsync(Feedback("router-1", (Good, Arm(1, 1))), CancellationToken.None));
        var before = Writes.Count;

        // A provider's recovery forgives the arms of every agent: router's own and billing's (a new document).
        Assert.True(await store.TryApplyAsync(Outcome("recovery", (Good, Arm(2, 2)), (Billing, Arm(5, 5))), CancellationToken.None));

        Assert.Equal(1, Transactions);
        var writes = Writes.Skip(before).ToList();
        Assert.Equal(DaprLearningStateStore.IndexKey, Assert.Single(writes, w => w.Method == "SaveState").Key);
        var operations = writes.Where(w => w.Method.StartsWith("ExecuteStateTransaction/", StringComparison.Ordinal)).ToList();
        Assert.Equal([BillingKey, RouterKey, RouterSelection(0)], operations.Select(o => o.Key));
        Assert.All(operations, o => Assert.Equal(("ExecuteStateTransaction/upsert", Store, "saved"), (o.Method, o.Store, o.Outcome)));
        Assert.Equal(("first-write", "first-write"), (operations[0].Concurrency, operations[1].Concurrency));
        Assert.True(string.IsNullOrEmpty(operations[0].Etag), "billing's document is created, only if still missing");
        Assert.False(string.IsNullOrEmpty(operations[1].Etag), "router's document is written under the ETag it was read with");

        Assert.Equal(["router-1", "recovery"], AppliedIds(RouterKey));
        Assert.Empty(AppliedIds(BillingKey));
        Assert.Equal(0, Stored(BillingKey).GetProperty("selectionsRecorded").GetInt64());
        Assert.Equal(2, Stored(DaprLearningStateStore.IndexKey).GetProperty("agents").GetArrayLength());
        var arms = await ArmsAsync(NewStore(), Billing, Good);
        Assert.Equal(Arm(2, 2), arms[Good]);
        Assert.Equal(Arm(5, 5), arms[Billing]);

        Assert.False(await store.TryApplyAsync(Outcome("recovery", (Good, Arm(7, 7)), (Billing, Arm(7, 7))), CancellationToken.None));
        Assert.Equal(1, Transactions);

        // Both documents exist now: the next such update writes both under their ETags.
        Assert.True(await store.TryApplyAsync(Feedback("recovery-2", (Good, Arm(3, 3)), (Billing, Arm(6, 6))), CancellationToken.None));
        Assert.Equal(2, Transactions);
        var second = TransactionOperations.TakeLast(2).ToList();
        Assert.Equal([BillingKey, RouterKey], second.Select(o => o.Key));
        Assert.All(second, o => Assert.False(string.IsNullOrEmpty(o.Etag)));
    }

    [Fact]
    public async Task A_writer_that_slips_in_before_a_save_makes_it_read_again_and_loses_nothing()
    {
        var store = NewStore();
        var replica = NewStore();
        Assert.True(await store.TryApplyAsync(Feedback("1", (Good, Arm(1, 1))), CancellationToken.None));
        var slipped = false;
        _sidecar.BeforeSave = async request =>
        {
            if (!slipped && request.States[0].Key == RouterKey)
            {
                slipped = true;
                Assert.True(await replica.TryApplyAsync(Feedback("replica", (Other, Arm(4, 4))), CancellationToken.None));
            }
        };

        Assert.True(await store.TryApplyAsync(Feedback("2", (Good, Arm(2, 2))), CancellationToken.None));

        Assert.Contains(_sidecar.StateCalls, c => c.Method == "SaveState" && c.Key == RouterKey && c.Outcome == "possible etag mismatch");
        Assert.Equal(["1", "replica", "2"], AppliedIds(RouterKey));
        var arms = await ArmsAsync(NewStore(), Good, Other);
        Assert.Equal(Arm(2, 2), arms[Good]);
        Assert.Equal(Arm(4, 4), arms[Other]);
    }

    [Fact]
    public async Task A_writer_that_slips_in_before_a_transaction_makes_it_read_again_and_loses_nothing()
    {
        var store = NewStore();
        var replica = NewStore();
        Assert.True(await store.TryApplyAsync(Outcome("router-1", (Good, Arm(1, 1))), CancellationToken.None));
        Assert.True(await store.TryApplyAsync(Outcome("billing-1", (Billing, Arm(1, 1))), CancellationToken.None));
        var slipped = false;
        _sidecar.BeforeTransaction = async _ =>
        {
            if (!slipped)
            {
                slipped = true;
                Assert.True(await replica.TryApplyAsync(Outcome("router-2", (Good, Arm(2, 2))), CancellationToken.None));
            }
        };

        Assert.True(await store.TryApplyAsync(Outcome("recovery", (Good, Arm(3, 3)), (Billing, Arm(3, 3))), CancellationToken.None));

        Assert.Contains(TransactionOperations, c => c.Key == RouterKey && c.Outcome == "possible etag mismatch");
        Assert.Equal(["router-1", "router-2", "recovery"], AppliedIds(RouterKey));
        Assert.Equal(["billing-1"], AppliedIds(BillingKey));
        Assert.Equal(["recovery", "router-2", "router-1"], (await store.HistoryAsync("acme", "router", "", 10, CancellationToken.None)).Select(s => s.InteractionId));
        var arms = await ArmsAsync(NewStore(), Billing, Good);
        Assert.Equal(Arm(3, 3), arms[Good]);
        Assert.Equal(Arm(3, 3), arms[Billing]);
    }

    [Fact]
    public async Task Applied_ids_are_bounded_to_the_newest_ten_thousand_per_agent()
    {
        var old = Enumerable.Range(0, DaprLearningStateStore.AppliedIdsPerAgent).Select(i => $"old-{i}").ToList();
        _sidecar.OverwriteState(Store, RouterKey, JsonSerializer.SerializeToUtf8Bytes(new { appliedIds = old }));
        var store = NewStore();

        Assert.True(await store.TryApplyAsync(Feedback("new", (Good, Arm(1, 1))), CancellationToken.None));

        var applied = AppliedIds(RouterKey);
        Assert.Equal(DaprLearningStateStore.AppliedIdsPerAgent, applied.Count);
        Assert.Equal(["old-1", "new"], [applied[0], applied[^1]]);
        Assert.False(await store.TryApplyAsync(Feedback("old-1", (Good, Arm(2, 2))), CancellationToken.None));
        Assert.False(await store.TryApplyAsync(Feedback("new", (Good, Arm(2, 2))), CancellationToken.None));
        Assert.True(await store.TryApplyAsync(Feedback("old-0", (Good, Arm(2, 2))), CancellationToken.None));
    }

    [Fact]
    public async Task Putting_an_experiment_again_replaces_it_and_drops_its_tallies_and_delete_removes_it()
    {
        var store = NewStore();
        var keep = ExperimentOf("keep", "x", "y");
        keep.TaskType = "other";
        await store.PutExperimentAsync(keep, CancellationToken.None);
        await store.PutExperimentAsync(ExperimentOf("trial", "a", "b"), CancellationToken.None);
        var keptTally = KeyValuePair.Create(new VariantKey("acme", "router", "keep", "x"), VariantTally.Empty.Add(true, 1, 0, 1));
        var trialTally = KeyValuePair.Create(new VariantKey("acme", "router", "trial", "a"), VariantTally.Empty.Add(true, 0.5, 0, 0.5));
        Assert.True(await store.TryApplyAsync(new LearningUpdate("1", new Dictionary<ArmKey, ArmState> { [Good] = Arm(1, 1) }, Tally: keptTally), CancellationToken.None));
        Assert.True(await store.TryApplyAsync(new LearningUpdate("2", new Dictionary<ArmKey, ArmState> { [Good] = Arm(2, 2) }, Tally: trialTally), CancellationToken.None));
        Assert.Equal(2, (await NewStore().LoadAsync(CancellationToken.None)).Tallies.Count);

        var replacement = ExperimentOf("trial", "c", "d", "e");
        await store.PutExperimentAsync(replacement, CancellationToken.None);

        var reader = NewStore();
        var loaded = await reader.LoadAsync(CancellationToken.None);
        var arms = await ArmsAsync(reader, Good);
        Assert.Equal([keep, replacement], loaded.Experiments);
        Assert.Equal(keptTally, Assert.Single(loaded.Tallies));
        Assert.Equal(Arm(2, 2), arms[Good]);

        Assert.True(await store.DeleteExperimentAsync("acme", "router", "trial", CancellationToken.None));
        var writes = Writes.Count;
        Assert.False(await store.DeleteExperimentAsync("acme", "router", "trial", CancellationToken.None));
        Assert.False(await store.DeleteExperimentAsync("acme", "nobody", "trial", CancellationToken.None));
        Assert.Equal(writes, Writes.Count);
        Assert.Equal([keep], (await NewStore().LoadAsync(CancellationToken.None)).Experiments);
        Assert.Equal([RouterKey, DaprLearningStateStore.IndexKey], _sidecar.StateKeys(Store));
    }

    [Fact]
    public async Task Twenty_ids_applied_concurrently_to_one_agent_all_land_exactly_once()
    {
        // Outcomes (a transaction each) and feedback (a save each) mixed, from four replicas.
        var ids = Enumerable.Range(0, 20).Select(i => $"concurrent-{i:00}").ToList();
        var stores = Enumerable.Range(0, 4).Select(_ => NewStore()).ToList();
        LearningUpdate UpdateOf(int i, ArmState arm) => i % 2 == 0 ? Outcome(ids[i], (Good, arm)) : Feedback(ids[i], (Good, arm));

        var applied = await Task.WhenAll(ids.Select((_, i) =>
            Task.Run(() => stores[i % stores.Count].TryApplyAsync(UpdateOf(i, Arm(i, i)), CancellationToken.None))));
        var again = await Task.WhenAll(ids.Select((_, i) =>
            Task.Run(() => stores[(i + 1) % stores.Count].TryApplyAsync(UpdateOf(i, Arm(99, 99)), CancellationToken.None))));

        Assert.All(applied, Assert.True);
        Assert.All(again, Assert.False);
        Assert.Equal(ids, AppliedIds(RouterKey).Order(StringComparer.Ordinal));
        var history = await NewStore().HistoryAsync("acme", "router", "", 100, CancellationToken.None);
        Assert.Equal(ids.Where((_, i) => i % 2 == 0), history.Select(s => s.InteractionId).Order(StringComparer.Ordinal));
        Assert.Equal(10, Stored(RouterKey).GetProperty("selectionsRecorded").GetInt64());
        Assert.NotEqual(Arm(99, 99), (await ArmsAsync(NewStore(), Good))[Good]);
        Assert.Equal(1, Stored(DaprLearningStateStore.IndexKey).GetProperty("agents").GetArrayLength());
    }

    [Fact]
    public async Task Updates_spanning_two_agents_applied_concurrently_all_land_exactly_once()
    {
        var ids = Enumerable.Range(0, 12).Select(i => $"span-{i:00}").ToList();
        var stores = Enumerable.Range(0, 3).Select(_ => NewStore()).ToList();

        var applied = await Task.WhenAll(ids.Select((id, i) =>
            Task.Run(() => stores[i % stores.Count].TryApplyAsync(Outcome(id, (Good, Arm(i, i)), (Billing, Arm(i, i))), CancellationToken.None))));

        Assert.All(applied, Assert.True);
        Assert.Equal(ids, AppliedIds(RouterKey).Order(StringComparer.Ordinal));
        Assert.Empty(AppliedIds(BillingKey));
        Assert.Equal(ids.Count, (await NewStore().HistoryAsync("acme", "router", "", 100, CancellationToken.None)).Count);

        // Each transaction wrote both arms with the same value: whichever came last, they still agree.
        var arms = await ArmsAsync(NewStore(), Billing, Good);
        Assert.Equal(arms[Good], arms[Billing]);
    }

    [Fact]
    public async Task A_learning_service_over_the_dapr_store_recovers_its_scores_after_a_restart()
    {
        var rank = new RankRequest { Tenant = "acme", Agent = "router", TaskType = "classify", EstimatedInputTokens = 1_000 };
        rank.Candidates.Add(new CandidateArm { Arm = new ArmRef { Provider = "openai", Model = "gpt-small" }, InputPricePerMtok = 0.5, OutputPricePerMtok = 1.5, PriorQuality = 0.7, Available = true });
        rank.Candidates.Add(new CandidateArm { Arm = new ArmRef { Provider = "anthropic", Model = "haiku" }, InputPricePerMtok = 1, OutputPricePerMtok = 5, PriorQuality = 0.8, Available = true });
        var scoresRequest = new GetScoresRequest { Tenant = "acme", Agent = "router" };
        var experimentsRequest = new GetExperimentsRequest { Tenant = "acme", Agent = "router" };
        InteractionCompleted Outcome(int i, ArmRef arm)
        {
            var outcome = new InteractionCompleted
            {
                InteractionId = $"interaction-{i}", Tenant = "acme", Agent = "router", TaskType = "classify", Context = "simple",
                Chosen = arm, Success = i % 4 != 0, Quality = 0.6 + (0.03 * (i % 5)), CostUsd = 0.002, ReferenceCostUsd = 0.01,
                Experiment = "policy-test", Variant = i % 2 == 0 ? "a" : "b",
            };
            outcome.Attempts.Add(new AttemptOutcome { Arm = arm, Success = outcome.Success });
            return outcome;
        }

        ScoresReply scores;
        ExperimentResults results;
        var options = Options.Create(new LearningOptions());
        using (var service = new LearningService(NewStore(), options, new Random(7), _clock))
        {
            await service.PutExperimentAsync(ExperimentOf("policy-test", "a", "b"), CancellationToken.None);
            for (var i = 1; i <= 12; i++)
            {
                var ranked = await service.RankAsync(rank, CancellationToken.None);
                Assert.True((await service.RecordOutcomeAsync(Outcome(i, ranked.Ranked[0]), CancellationToken.None)).Recorded);
            }

            scores = await service.GetScoresAsync(scoresRequest, CancellationToken.None);
            results = await service.GetExperimentsAsync(experimentsRequest, CancellationToken.None);
        }

        using var restarted = new LearningService(NewStore(), options, new Random(8), _clock);
        Assert.Equal(scores, await restarted.GetScoresAsync(scoresRequest, CancellationToken.None));
        Assert.Equal(results, await restarted.GetExperimentsAsync(experimentsRequest, CancellationToken.None));
        Assert.Equal(2, scores.Scores.Count);
        Assert.Equal(12, scores.Scores.Sum(s => s.Pulls));
        Assert.Equal(12, results.Experiments[0].Variants.Sum(v => v.Interactions));

        Assert.False((await restarted.RecordOutcomeAsync(Outcome(3, rank.Candidates[0].Arm), CancellationToken.None)).Recorded);
        Assert.Equal(scores, await restarted.GetScoresAsync(scoresRequest, CancellationToken.None));
    }

    [Fact]
    public void AddDaprLearningState_registers_the_dapr_store_on_the_registered_client()
    {
        using var client = new DaprClientBuilder().UseGrpcEndpoint("http://127.0.0.1:1").UseHttpEndpoint("http://127.0.0.1:2").Build();
        using var services = new ServiceCollection().AddSingleton(client).AddDaprLearningState().BuildServiceProvider();

        Assert.IsType<DaprLearningStateStore>(services.GetRequiredService<ILearningStateStore>());
        Assert.Same(client, services.GetRequiredService<DaprClient>());
    }

    /// <summary>The arms of every agent the keys belong to.</summary>
    private static async Task<Dictionary<ArmKey, ArmState>> ArmsAsync(DaprLearningStateStore store, params ArmKey[] of)
    {
        var arms = new Dictionary<ArmKey, ArmState>();
        foreach (var (tenant, agent) in of.Select(k => (k.Tenant, k.Agent)).Distinct())
        {
            foreach (var (key, arm) in await store.LoadArmsAsync(tenant, agent, CancellationToken.None))
            {
                arms[key] = arm;
            }
        }

        return arms;
    }
}
