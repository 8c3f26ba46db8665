using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Dapr;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>DaprWorkingMemoryStore against the sidecar double's state store: what it sends, and what it gets back.</summary>
public sealed class WorkingMemoryContractTests : IAsyncLifetime
{
    private static readonly AgentScope Router = new("acme", "email-router");
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private SidecarDouble _sidecar = null!;
    private DaprWorkingMemoryStore _store = null!;

    public async Task InitializeAsync()
    {
        _sidecar = await SidecarDouble.StartAsync(_clock);
        _store = new DaprWorkingMemoryStore(_sidecar.Client, _clock);
    }

    public async Task DisposeAsync() => await _sidecar.DisposeAsync();

    private WorkingTurn Turn(string text) => new($"prompt {text}", $"reply {text}", $"id-{text}", _clock.GetUtcNow());

    private List<StateCall> Saves => _sidecar.StateCalls.Where(c => c.Method == "SaveState").ToList();

    [Fact]
    public async Task Append_writes_the_session_key_and_the_agent_index_with_ttlInSeconds_and_first_write()
    {
        await _store.AppendAsync(Router, "s-42", Turn("1"), Hour, 20, CancellationToken.None);

        var saves = Saves;
        Assert.Equal(2, saves.Count);
        Assert.All(saves, s =>
        {
            Assert.Equal(DaprComponents.WorkingMemory, s.Store);
            Assert.Equal("3600", s.Metadata["ttlInSeconds"]);
            Assert.Equal("first-write", s.Concurrency);
            Assert.True(string.IsNullOrEmpty(s.Etag), "a new key is created without an ETag");
            Assert.Equal("saved", s.Outcome);
        });
        Assert.Equal("working/acme/email-router/session/s-42", saves[0].Key);
        Assert.Equal("working/acme/email-router/sessions", saves[1].Key);
        Assert.Equal(["working/acme/email-router/session/s-42", "working/acme/email-router/sessions"], _sidecar.StateKeys(DaprComponents.WorkingMemory));

        var turns = await _store.GetRecentAsync(Router, "s-42", 10, CancellationToken.None);
        var turn = Assert.Single(turns);
        Assert.Equal(Turn("1"), turn);
        Assert.Empty(_sidecar.UnservedPaths);
    }

    [Fact]
    public async Task A_later_append_writes_under_the_etag_it_read_with_the_longest_remaining_ttl()
    {
        await _store.AppendAsync(Router, "s", Turn("1"), Hour, 20, CancellationToken.None);
        var firstRead = _sidecar.StateCalls.Last(c => c.Method == "GetState" && c.Key.EndsWith("/session/s", StringComparison.Ordinal));
        _clock.Advance(TimeSpan.FromMinutes(10));

        await _store.AppendAsync(Router, "s", Turn("2"), TimeSpan.FromMinutes(1), 20, CancellationToken.None);

        var second = Saves.Where(s => s.Key.EndsWith("/session/s", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, second.Count);
        Assert.False(string.IsNullOrEmpty(second[1].Etag), "an existing key is written under the ETag it was read with");
        Assert.Equal("missing", firstRead.Outcome);

        // The first turn still has 50 minutes: the key must live that long, not the 1 minute of the new turn.
        Assert.Equal("3000", second[1].Metadata["ttlInSeconds"]);
        Assert.Equal(_clock.GetUtcNow().AddMinutes(50), _sidecar.StateExpiry(DaprComponents.WorkingMemory, DaprWorkingMemoryStore.SessionKey(Router, "s")));
    }

    [Fact]
    public async Task The_store_forgets_a_session_when_its_ttl_runs_out_and_reads_drop_expired_turns_before_that()
    {
        await _store.AppendAsync(Router, "short", Turn("gone"), TimeSpan.FromSeconds(60), 20, CancellationToken.None);
        await _store.AppendAsync(Router, "mixed", Turn("old"), TimeSpan.FromSeconds(30), 20, CancellationToken.None);
        await _store.AppendAsync(Router, "mixed", Turn("new"), TimeSpan.FromSeconds(300), 20, CancellationToken.None);

        _clock.Advance(TimeSpan.FromSeconds(61));

        // The backend dropped the short session's key by its ttlInSeconds; the mixed one lives on.
        var shortKey = DaprWorkingMemoryStore.SessionKey(Router, "short");
        Assert.Null(_sidecar.StateValue(DaprComponents.WorkingMemory, shortKey));
        Assert.Empty(await _store.GetRecentAsync(Router, "short", 10, CancellationToken.None));

        // The mixed key is alive, but its first turn expired: reads filter it out.
        Assert.NotNull(_sidecar.StateValue(DaprComponents.WorkingMemory, DaprWorkingMemoryStore.SessionKey(Router, "mixed")));
        var mixed = await _store.GetRecentAsync(Router, "mixed", 10, CancellationToken.None);
        Assert.Equal(["prompt new"], mixed.Select(t => t.Prompt));
        Assert.Equal(new TierUsage(1, Encoding.UTF8.GetByteCount("prompt new") + Encoding.UTF8.GetByteCount("reply new")),
            await _store.UsageAsync(Router, CancellationToken.None));

        _clock.Advance(TimeSpan.FromSeconds(300));
        Assert.Empty(_sidecar.StateKeys(DaprComponents.WorkingMemory));
        Assert.Equal(new TierUsage(0, 0), await _store.UsageAsync(Router, CancellationToken.None));
    }

    [Fact]
    public async Task Appends_trim_the_session_to_the_newest_turns_and_reads_return_the_newest_oldest_first()
    {
        for (var i = 1; i <= 5; i++)
        {
            await _store.AppendAsync(Router, "s", Turn(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), Hour, 3, CancellationToken.None);
        }

        var stored = JsonDocument.Parse(_sidecar.StateValue(DaprComponents.WorkingMemory, DaprWorkingMemoryStore.SessionKey(Router, "s"))!);
        Assert.Equal(3, stored.RootElement.GetProperty("turns").GetArrayLength());
        Assert.Equal(["prompt 3", "prompt 4", "prompt 5"], (await _store.GetRecentAsync(Router, "s", 10, CancellationToken.None)).Select(t => t.Prompt));
        Assert.Equal(["prompt 4", "prompt 5"], (await _store.GetRecentAsync(Router, "s", 2, CancellationToken.None)).Select(t => t.Prompt));
        Assert.Empty(await _store.GetRecentAsync(Router, "s", 0, CancellationToken.None));
    }

    [Fact]
    public async Task Agents_and_tenants_never_share_keys_even_with_separators_in_their_names()
    {
        AgentScope[] scopes =
        [
            Router,
            new("acme", "billing"),
            new("globex", "email-router"),
            new("acme", "email-router/session/s"),  // would collide with Router's session "s" unescaped
            new("acme/email-router", "session"),
            new("acme", "a||b"),                    // Dapr's own key separator
        ];
        foreach (var scope in scopes)
        {
            await _store.AppendAsync(scope, "s", new WorkingTurn($"{scope.Tenant}:{scope.Agent}", "r", "i", _clock.GetUtcNow()), Hour, 20, CancellationToken.None);
        }

        var keys = _sidecar.StateKeys(DaprComponents.WorkingMemory);
        Assert.Equal(scopes.Length * 2, keys.Count);
        Assert.DoesNotContain(keys, k => k.Contains("||", StringComparison.Ordinal));
        foreach (var scope in scopes)
        {
            var turn = Assert.Single(await _store.GetRecentAsync(scope, "s", 10, CancellationToken.None));
            Assert.Equal($"{scope.Tenant}:{scope.Agent}", turn.Prompt);
            Assert.Equal(1, (await _store.UsageAsync(scope, CancellationToken.None)).Items);
        }

        Assert.Throws<ArgumentException>(() => DaprWorkingMemoryStore.SessionKey(new AgentScope("", "a"), "s"));
    }

    [Fact]
    public async Task Purge_deletes_every_session_of_the_agent_and_its_index_and_nothing_else()
    {
        var other = new AgentScope("acme", "billing");
        await _store.AppendAsync(Router, "s1", Turn("1"), Hour, 20, CancellationToken.None);
        await _store.AppendAsync(Router, "s1", Turn("2"), Hour, 20, CancellationToken.None);
        await _store.AppendAsync(Router, "s2", Turn("3"), Hour, 20, CancellationToken.None);
        await _store.AppendAsync(other, "s1", Turn("4"), Hour, 20, CancellationToken.None);

        Assert.Equal(3, await _store.PurgeAsync(Router, CancellationToken.None));

        var deleted = _sidecar.StateCalls.Where(c => c.Method == "DeleteState").Select(c => c.Key).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            [DaprWorkingMemoryStore.SessionKey(Router, "s1"), DaprWorkingMemoryStore.SessionKey(Router, "s2"), DaprWorkingMemoryStore.IndexKey(Router)],
            deleted);
        Assert.Empty(await _store.GetRecentAsync(Router, "s1", 10, CancellationToken.None));
        Assert.Equal(new TierUsage(0, 0), await _store.UsageAsync(Router, CancellationToken.None));
        Assert.Single(await _store.GetRecentAsync(other, "s1", 10, CancellationToken.None));
        Assert.Equal(0, await _store.PurgeAsync(Router, CancellationToken.None));
    }

    [Fact]
    public async Task Usage_counts_unexpired_turns_and_their_utf8_bytes_over_all_sessions()
    {
        await _store.AppendAsync(Router, "s1", new WorkingTurn("héllo", "wörld", "i1", _clock.GetUtcNow()), Hour, 20, CancellationToken.None);
        await _store.AppendAsync(Router, "s2", new WorkingTurn("a", "b", "i2", _clock.GetUtcNow()), Hour, 20, CancellationToken.None);

        Assert.Equal(new TierUsage(2, 6 + 6 + 1 + 1), await _store.UsageAsync(Router, CancellationToken.None));
        Assert.Contains(_sidecar.StateCalls, c => c.Method == "GetBulkState");
    }

    [Fact]
    public async Task A_writer_that_slips_in_between_read_and_write_loses_nothing()
    {
        await _store.AppendAsync(Router, "s", Turn("1"), Hour, 20, CancellationToken.None);
        var key = DaprWorkingMemoryStore.SessionKey(Router, "s");
        var slipped = false;
        _sidecar.BeforeSave = request =>
        {
            if (!slipped && request.States[0].Key == key)
            {
                // Another instance appends "other" after our read: our first write must be refused.
                slipped = true;
                var current = JsonSerializer.Deserialize<JsonElement>(_sidecar.StateValue(DaprComponents.WorkingMemory, key)!);
                var turns = current.GetProperty("turns").EnumerateArray().Select(t => (object)t).ToList();
                turns.Add(new { prompt = "prompt other", reply = "reply other", interactionId = "id-other", at = _clock.GetUtcNow(), expiresAt = _clock.GetUtcNow() + Hour });
                _sidecar.OverwriteState(DaprComponents.WorkingMemory, key, JsonSerializer.SerializeToUtf8Bytes(new { turns }));
            }

            return Task.CompletedTask;
        };

        await _store.AppendAsync(Router, "s", Turn("2"), Hour, 20, CancellationToken.None);

        Assert.Contains(_sidecar.StateCalls, c => c.Method == "SaveState" && c.Key == key && c.Outcome == "possible etag mismatch");
        Assert.Equal(["prompt 1", "prompt other", "prompt 2"], (await _store.GetRecentAsync(Router, "s", 10, CancellationToken.None)).Select(t => t.Prompt));
    }

    [Fact]
    public async Task Concurrent_appends_to_one_session_all_land()
    {
        await Task.WhenAll(Enumerable.Range(0, 24).Select(i =>
            Task.Run(() => _store.AppendAsync(Router, "busy", Turn(i.ToString("00", System.Globalization.CultureInfo.InvariantCulture)), Hour, 100, CancellationToken.None))));

        var turns = await _store.GetRecentAsync(Router, "busy", 100, CancellationToken.None);
        Assert.Equal(24, turns.Count);
        Assert.Equal(24, turns.Select(t => t.InteractionId).Distinct().Count());
        Assert.Equal(24, (await _store.UsageAsync(Router, CancellationToken.None)).Items);
    }
}
