using PersistentAgents.Embeddings;
using System.Diagnostics;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using PersistentAgents.Memory;

namespace PersistentAgents.Gateway.Tests;

public sealed partial class GatewayServiceTests
{
    private static readonly ModelDefinition Priced = new() { Name = "m", InputPricePerMTok = 2.5, OutputPricePerMTok = 10 };
    private static readonly ModelDefinition Free = new() { Name = "free", InputPricePerMTok = 0, OutputPricePerMTok = 0 };

    private readonly RecordingPublisher _events = new();
    private TimeProvider _time = TimeProvider.System;

    [Fact]
    public async Task A_500_then_a_200_is_one_retry_and_a_success()
    {
        var flaky = new ScriptedProvider("flaky", ScriptedProvider.Fail(retryable: true), ScriptedProvider.Reply());
        var reply = await Gateway([flaky]).CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.True(reply.Success);
        Assert.Equal(2, flaky.Calls);
        Assert.Equal("succeeded", Assert.Single(reply.Attempts).Outcome);
    }

    [Fact]
    public async Task A_429_with_retry_after_waits_about_that_long()
    {
        var limited = new ScriptedProvider("limited", ScriptedProvider.Fail(retryable: true, retryAfter: TimeSpan.FromSeconds(1)), ScriptedProvider.Reply());
        var clock = Stopwatch.StartNew();
        var reply = await Gateway([limited]).CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.True(reply.Success);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.95, 3);
    }

    [Fact]
    public async Task A_400_is_not_retried_and_the_next_candidate_answers()
    {
        var refusing = new ScriptedProvider("refusing", ScriptedProvider.Fail(retryable: false));
        var healthy = new ScriptedProvider("healthy", ScriptedProvider.Reply("from healthy"));
        var reply = await Gateway([refusing, healthy]).CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.Equal(1, refusing.Calls);
        Assert.Equal("from healthy", reply.Text);
        Assert.Equal(["failed", "succeeded"], reply.Attempts.Select(a => a.Outcome));
    }

    [Fact]
    public async Task A_failing_provider_opens_its_circuit_is_skipped_then_probed_back_to_health()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        _time = clock;
        var sick = new ScriptedProvider("sick", ScriptedProvider.Fail(true), ScriptedProvider.Fail(true), ScriptedProvider.Fail(true), ScriptedProvider.Fail(true), ScriptedProvider.Reply("recovered"));
        var backup = new ScriptedProvider("backup", ScriptedProvider.Reply("from backup"));
        var gateway = Gateway([sick, backup], new ResilienceOptions { MaxRetries = 0, MinimumThroughput = 4, BreakDuration = TimeSpan.FromSeconds(30) });

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("from backup", (await gateway.CompleteAsync(Request($"call {i}"), CancellationToken.None)).Text);
        }

        Assert.Equal("open", Circuit(await gateway.GetProviderHealthAsync(new(), CancellationToken.None), "sick"));
        var skipped = await gateway.CompleteAsync(Request("while open"), CancellationToken.None);
        Assert.Equal("skipped", skipped.Attempts[0].Outcome);
        Assert.Equal(4, sick.Calls);
        Assert.Contains(_events.Published, e => e.Topic == Topics.ProviderHealth && ((ProviderHealthChanged)e.Payload).Circuit == "open");

        // The break is over: the next request probes the sick provider first, even ranked last, and it answers.
        clock.Advance(TimeSpan.FromSeconds(31));
        var probe = await gateway.CompleteAsync(Request("probe", backupFirst: true), CancellationToken.None);
        Assert.Equal("recovered", probe.Text);
        Assert.Equal("closed", Circuit(await gateway.GetProviderHealthAsync(new(), CancellationToken.None), "sick"));
    }

    [Fact]
    public async Task A_hanging_provider_times_out_and_the_next_candidate_answers_in_bounded_time()
    {
        var hanging = new ScriptedProvider("hanging", ScriptedProvider.Hang());
        var healthy = new ScriptedProvider("healthy", ScriptedProvider.Reply("from healthy"));
        var clock = Stopwatch.StartNew();
        var reply = await Gateway([hanging, healthy], new ResilienceOptions { MaxRetries = 0 }, timeout: TimeSpan.FromMilliseconds(300))
            .CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.Equal("from healthy", reply.Text);
        Assert.Equal("hanging/m did not answer within 0.3 s", reply.Attempts[0].Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Cost_follows_the_catalog_and_unreported_tokens_are_counted_with_the_tokenizer()
    {
        var reported = await Gateway([new ScriptedProvider("p", ScriptedProvider.Reply("ok", tokensIn: 1_000, tokensOut: 200))])
            .CompleteAsync(Request("hello"), CancellationToken.None);
        Assert.Equal(((1_000 * 2.5) + (200 * 10)) / 1_000_000, reported.CostUsd, 12);

        const string answer = "Invoices above ten thousand euros need two approvals.";
        var counted = await Gateway([new ScriptedProvider("p", ScriptedProvider.Reply(answer))])
            .CompleteAsync(Request("Who approves large invoices?"), CancellationToken.None);
        var tokenizer = new TokenCounter();
        Assert.Equal(tokenizer.Count("You route email.\nWho approves large invoices?"), counted.TokensIn);
        Assert.Equal(tokenizer.Count(answer), counted.TokensOut);
        Assert.Equal(((counted.TokensIn * 2.5) + (counted.TokensOut * 10)) / 1_000_000, counted.CostUsd, 12);
    }

    [Fact]
    public async Task Exact_and_semantic_hits_cost_nothing_expire_and_never_cross_tenants()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        _time = clock;
        var provider = new ScriptedProvider("p", ScriptedProvider.Reply("cached answer", tokensIn: 10, tokensOut: 5));
        // Semantic caching is a choice, and one that needs a model embedder: the stand-in gives every text one vector.
        var gateway = Gateway([provider], cache: new ResponseCacheOptions { Ttl = TimeSpan.FromMinutes(1), Semantic = true }, embedder: new StubEmbedder(_ => [1, 0, 0, 0]));

        Assert.False((await gateway.CompleteAsync(Request("Where does invoice 4471 go?"), CancellationToken.None)).CacheHit);
        var exact = await gateway.CompleteAsync(Request("Where  does invoice 4471 go?"), CancellationToken.None);
        Assert.True(exact.CacheHit);
        Assert.Equal((0, 0L, "cached"), (exact.CostUsd, exact.TokensIn, exact.Attempts.Single().Outcome));
        var semantic = await gateway.CompleteAsync(Request("where does the invoice 4471 go"), CancellationToken.None);
        Assert.Equal("cached-semantic", semantic.Attempts.Single().Outcome);
        Assert.Equal(1, provider.Calls);

        Assert.False((await gateway.CompleteAsync(Request("Where does invoice 4471 go?", tenant: "other-tenant"), CancellationToken.None)).CacheHit);
        var optedOut = Request("Where does invoice 4471 go?");
        optedOut.NoCache = true;
        Assert.False((await gateway.CompleteAsync(optedOut, CancellationToken.None)).CacheHit);
        Assert.Equal(3, provider.Calls);

        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.False((await gateway.CompleteAsync(Request("Where does invoice 4471 go?"), CancellationToken.None)).CacheHit);
        var counters = (await gateway.GetProviderHealthAsync(new(), CancellationToken.None)).Cache;
        Assert.Equal((1L, 1L), (counters.ExactHits, counters.SemanticHits));
    }

    [Fact]
    public async Task An_exhausted_budget_sends_nothing_and_a_free_primary_cannot_fail_over_past_it()
    {
        var paid = new ScriptedProvider("paid", ScriptedProvider.Reply());
        var budgets = new BudgetOptions { DailyUsdByAgent = { ["agent"] = 0.001 } };
        var refused = await Gateway([paid], budgets: budgets).CompleteAsync(Request("hello"), CancellationToken.None);
        Assert.True(refused.BudgetExhausted);
        Assert.Contains("daily budget of 0.001 USD", refused.BudgetMessage, StringComparison.Ordinal);
        Assert.Equal(0, paid.Calls);

        var free = new ScriptedProvider("free", ScriptedProvider.Fail(retryable: false));
        var failover = await Gateway([free, paid], budgets: budgets, models: [Free, Priced]).CompleteAsync(Request("hello"), CancellationToken.None);
        Assert.False(failover.Success);
        Assert.Equal(["failed", "skipped"], failover.Attempts.Select(a => a.Outcome));
        Assert.Equal("over budget", failover.Attempts[1].Error);
        Assert.True(failover.BudgetExhausted);
        Assert.Equal(0, paid.Calls);
    }

    [Fact]
    public async Task A_cheap_provider_failing_and_an_expensive_one_over_budget_is_a_budget_refusal_naming_both_until_the_next_utc_midnight()
    {
        _time = new FakeTimeProvider(new DateTimeOffset(2025, 3, 14, 23, 0, 0, 30, TimeSpan.Zero));
        var cheap = new ScriptedProvider("cheap", ScriptedProvider.Fail(retryable: false));
        var expensive = new ScriptedProvider("expensive", ScriptedProvider.Reply());
        var budgets = new BudgetOptions { DailyUsdByAgent = { ["agent"] = 0.001 } };

        var refused = await Gateway([cheap, expensive], budgets: budgets, models: [Free, Priced]).CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.False(refused.Success);
        Assert.True(refused.BudgetExhausted);
        Assert.Equal(0, expensive.Calls);
        Assert.StartsWith("cheaper providers failed: cheap/free failed: scripted failure; the rest exceed the daily budget of 0.001 USD: ", refused.BudgetMessage, StringComparison.Ordinal);
        Assert.Contains("agent 'agent' has a daily budget of 0.001 USD and 0 USD is spent or reserved today; expensive/m would cost up to ", refused.BudgetMessage, StringComparison.Ordinal);
        // 59 min 59.97 s to midnight, rounded up so that a retry never comes before the budget's day ends.
        Assert.Equal(3600, refused.BudgetRetryAfterSeconds);
    }

    [Fact]
    public async Task A_provider_failing_with_nothing_skipped_for_the_budget_is_no_budget_refusal()
    {
        var cheap = new ScriptedProvider("cheap", ScriptedProvider.Fail(retryable: false));
        var budgets = new BudgetOptions { DailyUsdByAgent = { ["agent"] = 1 } };

        var failed = await Gateway([cheap], budgets: budgets, models: [Free]).CompleteAsync(Request("hello"), CancellationToken.None);

        Assert.False(failed.BudgetExhausted);
        Assert.Equal("", failed.BudgetMessage);
        Assert.Equal(0, failed.BudgetRetryAfterSeconds);
    }

    [Fact]
    public async Task A_stream_cut_before_its_first_token_falls_back_and_one_cut_after_tokens_ends_with_an_error()
    {
        var dead = new ScriptedProvider("dead", ScriptedProvider.Fail(retryable: false));
        var healthy = new ScriptedProvider("healthy", ScriptedProvider.Reply("streamed from healthy"));
        var deltas = new List<string>();
        var reply = await Gateway([dead, healthy], new ResilienceOptions { MaxRetries = 0 })
            .CompleteStreamingAsync(Request("hello"), (d, _) => { deltas.Add(d.Text); return ValueTask.CompletedTask; }, CancellationToken.None);
        Assert.True(reply.Success);
        Assert.Equal("streamed from healthy", string.Concat(deltas));
        Assert.Equal(reply.Text, string.Concat(deltas));

        var cut = new ScriptedProvider("cut", ScriptedProvider.BreakAfter(3));
        var never = new ScriptedProvider("never", ScriptedProvider.Reply());
        deltas.Clear();
        var broken = await Gateway([cut, never]).CompleteStreamingAsync(Request("hello"), (d, _) => { deltas.Add(d.Text); return ValueTask.CompletedTask; }, CancellationToken.None);
        Assert.False(broken.Success);
        Assert.Equal("word word word", string.Concat(deltas));
        Assert.StartsWith("cut/m broke after 14 characters were sent", broken.StreamError, StringComparison.Ordinal);
        Assert.Equal(1, cut.Calls);
        Assert.Equal(0, never.Calls);
    }

    [Fact]
    public async Task Concurrent_reservations_cannot_overspend_a_budget_by_more_than_one_call()
    {
        var ledger = new SpendLedger(new MemorySpendStore(), Options.Create(new BudgetOptions { DailyUsdByAgent = { ["a"] = 1.0 } }), TimeProvider.System);
        var accepted = 0;
        await Parallel.ForAsync(0, 200, async (_, _) =>
        {
            var (reservation, _, _) = await ledger.TryReserveAsync("t", "a", 0.05, CancellationToken.None);
            if (reservation is not null)
            {
                Interlocked.Increment(ref accepted);
                await Task.Yield();
                await ledger.SettleAsync(reservation, 0.06, CancellationToken.None);
            }
        });

        Assert.InRange(accepted * 0.06, 0.9, 1.0 + 0.06 + 0.05);
    }

    [Fact]
    public async Task The_ledger_holds_only_todays_spend_once_the_date_changes()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 23, 0, 0, TimeSpan.Zero));
        var store = new MemorySpendStore();
        var ledger = new SpendLedger(store, Options.Create(new BudgetOptions { DefaultDailyUsd = 1.0 }), clock);
        foreach (var agent in new[] { "a", "b", "c" })
        {
            await ledger.SettleAsync((await ledger.TryReserveAsync("t", agent, 0.1, CancellationToken.None)).Reservation!, 0.4, CancellationToken.None);
        }

        Assert.Equal(3, ledger.DaysHeld);
        clock.Advance(TimeSpan.FromHours(2));

        var (reservation, _, committed) = await ledger.TryReserveAsync("t", "a", 0.1, CancellationToken.None);
        Assert.NotNull(reservation);
        Assert.Equal(0, committed);
        Assert.Equal(1, ledger.DaysHeld);
        Assert.Equal(0.4, await store.SpentOnAsync("t", "a", new DateOnly(2026, 3, 1), CancellationToken.None));
    }

    [Fact]
    public async Task A_slow_store_read_for_one_agent_holds_up_neither_another_agent_nor_reads_twice()
    {
        var store = new HeldReadsSpendStore(heldAgent: "slow");
        var ledger = new SpendLedger(store, Options.Create(new BudgetOptions { DefaultDailyUsd = 1.0 }), TimeProvider.System);

        var first = ledger.TryReserveAsync("t", "slow", 0.1, CancellationToken.None);
        var second = ledger.TryReserveAsync("t", "slow", 0.1, CancellationToken.None);
        await store.HeldReadStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // Another agent reserves, settles and reports while the slow agent's day is still being read.
        var (quick, _, _) = await ledger.TryReserveAsync("t", "quick", 0.1, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(quick);
        await ledger.SettleAsync(quick, 0.2, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0.2, await ledger.CommittedTodayAsync("t", "quick", CancellationToken.None), 9);
        Assert.False(first.IsCompleted);

        store.Release();
        var reserved = await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(reserved, r => Assert.NotNull(r.Reservation));
        Assert.Equal(1, store.Reads("slow"));
        Assert.Equal(0.1 + 0.1, await ledger.CommittedTodayAsync("t", "slow", CancellationToken.None), 9);
    }

    [Fact]
    public async Task Replicas_each_hold_the_budget_against_the_stored_spend_they_read_first_and_their_own_calls()
    {
        var store = new MemorySpendStore();
        var budgets = Options.Create(new BudgetOptions { DailyUsdByAgent = { ["a"] = 1.0 } });
        var replicaA = new SpendLedger(store, budgets, TimeProvider.System);
        var replicaB = new SpendLedger(store, budgets, TimeProvider.System);

        // Both replicas read the day's spend (none) at their first reservation, then each spends 0.9.
        var fromA = (await replicaA.TryReserveAsync("t", "a", 0.1, CancellationToken.None)).Reservation!;
        var fromB = (await replicaB.TryReserveAsync("t", "a", 0.1, CancellationToken.None)).Reservation!;
        await replicaA.SettleAsync(fromA, 0.9, CancellationToken.None);
        await replicaB.SettleAsync(fromB, 0.9, CancellationToken.None);

        // Neither sees the other's spend: together they passed the budget, each by its own count did not.
        Assert.Equal(1.8, await store.SpentOnAsync("t", "a", DateOnly.FromDateTime(DateTime.UtcNow), CancellationToken.None), 9);
        Assert.Equal(0.9, (await replicaA.TryReserveAsync("t", "a", 0.05, CancellationToken.None)).Committed, 9);
        Assert.NotNull((await replicaB.TryReserveAsync("t", "a", 0.05, CancellationToken.None)).Reservation);

        // A replica that first serves the agent now reads what both spent and refuses.
        var replicaC = new SpendLedger(store, budgets, TimeProvider.System);
        var (refused, _, committed) = await replicaC.TryReserveAsync("t", "a", 0.05, CancellationToken.None);
        Assert.Null(refused);
        Assert.Equal(1.8, committed, 9);
    }

    [Fact]
    public async Task The_response_cache_holds_at_most_its_configured_entries_and_no_empty_contexts()
    {
        var clock = new FakeTimeProvider();
        var cache = new ResponseCache(new HashedNGramEmbedder(), Options.Create(new ResponseCacheOptions { MaxEntries = 10, Semantic = true }), clock);
        for (var i = 0; i < 100; i++)
        {
            // A context of its own per request (another tenant each time), as when every request is new.
            var request = Request($"question {i}", tenant: $"t{i}");
            var lookup = await cache.LookupAsync(request, CancellationToken.None);
            await cache.StoreAsync(request, lookup, new GatewayReply { Success = true, Text = $"answer {i}" }, CancellationToken.None);
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.InRange(cache.Counters.Entries, 1, 10);
        Assert.InRange(cache.Contexts, 1, 10);
        Assert.Equal(CacheHit.Exact, (await cache.LookupAsync(Request("question 99", tenant: "t99"), CancellationToken.None)).Hit);
    }

    private static string Circuit(ProviderHealthReply health, string provider) => health.Providers.Single(p => p.Provider == provider).Circuit;

    private static GatewayRequest Request(string question, string tenant = "default", bool backupFirst = false)
    {
        var request = new GatewayRequest { Tenant = tenant, Agent = "agent", TaskType = "general" };
        request.Messages.Add(new ChatMessage { Role = "system", Content = "You route email." });
        request.Messages.Add(new ChatMessage { Role = "user", Content = question });
        if (backupFirst)
        {
            request.Candidates.Add(new ArmRef { Provider = "backup", Model = "m" });
            request.Candidates.Add(new ArmRef { Provider = "sick", Model = "m" });
        }

        return request;
    }

    private GatewayService Gateway(
        IReadOnlyList<ScriptedProvider> providers, ResilienceOptions? resilience = null, TimeSpan? timeout = null,
        ResponseCacheOptions? cache = null, BudgetOptions? budgets = null, IReadOnlyList<ModelDefinition>? models = null,
        Microsoft.Extensions.AI.IEmbeddingGenerator<string, Microsoft.Extensions.AI.Embedding<float>>? embedder = null)
    {
        var active = providers.Select((p, i) => new ActiveModel(p, models?[i] ?? Priced) { CallTimeout = timeout ?? TimeSpan.FromSeconds(5) }).ToList();
        var options = resilience ?? new ResilienceOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(10) };
        return new GatewayService(
            active,
            new ProviderResilience(providers.Select(p => p.Name), options, _events, _time, NullLogger<ProviderResilience>.Instance),
            new TokenCounter(),
            new ResponseCache(embedder ?? new HashedNGramEmbedder(), Options.Create(cache ?? new ResponseCacheOptions { Enabled = false }), _time),
            new SpendLedger(new MemorySpendStore(), Options.Create(budgets ?? new BudgetOptions()), _time),
            _time,
            NullLogger<GatewayService>.Instance,
            options);
    }

    private sealed class MemorySpendStore : ISpendStore
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, DateOnly), double> _spent = new();

        public Task<double> SpentOnAsync(string tenant, string agent, DateOnly day, CancellationToken cancellationToken) =>
            Task.FromResult(_spent.GetValueOrDefault((tenant, agent, day)));

        public Task AddAsync(string tenant, string agent, DateOnly day, double usd, CancellationToken cancellationToken)
        {
            _spent.AddOrUpdate((tenant, agent, day), usd, (_, v) => v + usd);
            return Task.CompletedTask;
        }
    }

    /// <summary>A spend store whose reads for one agent wait until released, counting reads per agent.</summary>
    private sealed class HeldReadsSpendStore(string heldAgent) : ISpendStore
    {
        private readonly MemorySpendStore _inner = new();
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _reads = new();

        public TaskCompletionSource HeldReadStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _released.TrySetResult();

        public int Reads(string agent) => _reads.GetValueOrDefault(agent);

        public async Task<double> SpentOnAsync(string tenant, string agent, DateOnly day, CancellationToken cancellationToken)
        {
            _reads.AddOrUpdate(agent, 1, (_, n) => n + 1);
            if (agent == heldAgent)
            {
                HeldReadStarted.TrySetResult();
                await _released.Task.WaitAsync(cancellationToken);
            }

            return await _inner.SpentOnAsync(tenant, agent, day, cancellationToken);
        }

        public Task AddAsync(string tenant, string agent, DateOnly day, double usd, CancellationToken cancellationToken) =>
            _inner.AddAsync(tenant, agent, day, usd, cancellationToken);
    }

    private sealed class RecordingPublisher : IEventPublisher
    {
        public System.Collections.Concurrent.ConcurrentQueue<(string Topic, IMessage Payload)> Published { get; } = new();

        public Task PublishAsync<TPayload>(string topic, string eventId, TPayload payload, CancellationToken cancellationToken)
            where TPayload : IMessage<TPayload>
        {
            Published.Enqueue((topic, payload));
            return Task.CompletedTask;
        }
    }
}
