using Microsoft.Extensions.Time.Testing;
using PersistentAgents.EmbeddedStorage;
using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Memory.Tests;

public sealed class SqliteWorkingMemoryStoreTests : IDisposable
{
    private static readonly AgentScope Alice = new("acme", "alice");
    private static readonly TimeSpan Ttl = TimeSpan.FromMinutes(30);
    private readonly TempFolder _folder = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly SqliteWorkingMemoryStore _store;

    public SqliteWorkingMemoryStoreTests()
    {
        _store = new SqliteWorkingMemoryStore(new SqliteDatabase(_folder.File("working.db"), SqliteWorkingMemoryStore.Schema), _time);
    }

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_turn_is_returned_before_its_ttl_and_gone_after_it()
    {
        await AppendAsync(Alice, "s1", "hello", Ttl);

        _time.Advance(Ttl - TimeSpan.FromSeconds(1));
        var before = await _store.GetRecentAsync(Alice, "s1", 10, CancellationToken.None);
        Assert.Equal("hello", Assert.Single(before).Prompt);
        Assert.Equal(1, (await _store.UsageAsync(Alice, CancellationToken.None)).Items);

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Empty(await _store.GetRecentAsync(Alice, "s1", 10, CancellationToken.None));
        Assert.Equal(0, (await _store.UsageAsync(Alice, CancellationToken.None)).Items);
    }

    [Fact]
    public async Task Sweeping_deletes_only_expired_rows()
    {
        await AppendAsync(Alice, "s1", "short-lived", TimeSpan.FromMinutes(1));
        await AppendAsync(Alice, "s2", "short-lived too", TimeSpan.FromMinutes(1));
        await AppendAsync(Alice, "s1", "long-lived", TimeSpan.FromHours(2));

        Assert.Equal(0, _store.SweepExpired());
        _time.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(2, _store.SweepExpired());
        Assert.Equal(0, _store.SweepExpired());
        Assert.Equal("long-lived", Assert.Single(await _store.GetRecentAsync(Alice, "s1", 10, CancellationToken.None)).Prompt);
        Assert.Equal(1, RowCount());
    }

    [Fact]
    public async Task A_session_keeps_only_its_newest_turns()
    {
        for (var i = 1; i <= 7; i++)
        {
            await AppendAsync(Alice, "s1", $"turn {i}", Ttl, maxTurnsPerSession: 3);
        }

        var turns = await _store.GetRecentAsync(Alice, "s1", 10, CancellationToken.None);

        Assert.Equal(["turn 5", "turn 6", "turn 7"], turns.Select(t => t.Prompt));
        Assert.Equal(3, RowCount());
    }

    [Fact]
    public async Task Turns_come_back_oldest_first_and_limited_to_the_newest()
    {
        for (var i = 1; i <= 5; i++)
        {
            await AppendAsync(Alice, "s1", $"turn {i}", Ttl);
            _time.Advance(TimeSpan.FromSeconds(10));
        }

        var all = await _store.GetRecentAsync(Alice, "s1", 10, CancellationToken.None);
        var lastTwo = await _store.GetRecentAsync(Alice, "s1", 2, CancellationToken.None);

        Assert.Equal(["turn 1", "turn 2", "turn 3", "turn 4", "turn 5"], all.Select(t => t.Prompt));
        Assert.Equal(all.Select(t => t.At).Order(), all.Select(t => t.At));
        Assert.Equal(["turn 4", "turn 5"], lastTwo.Select(t => t.Prompt));
        Assert.Equal(new WorkingTurn("turn 1", "reply to turn 1", "id-turn 1", new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero)), all[0]);
    }

    [Fact]
    public async Task Sessions_agents_and_tenants_are_isolated()
    {
        var bob = new AgentScope("acme", "bob");
        var otherTenantAlice = new AgentScope("globex", "alice");
        await AppendAsync(Alice, "s1", "alice s1", Ttl, maxTurnsPerSession: 1);
        await AppendAsync(Alice, "s2", "alice s2", Ttl, maxTurnsPerSession: 1);
        await AppendAsync(bob, "s1", "bob s1", Ttl, maxTurnsPerSession: 1);
        await AppendAsync(otherTenantAlice, "s1", "globex alice s1", Ttl, maxTurnsPerSession: 1);

        Assert.Equal("alice s1", Assert.Single(await _store.GetRecentAsync(Alice, "s1", 10, CancellationToken.None)).Prompt);
        Assert.Equal("alice s2", Assert.Single(await _store.GetRecentAsync(Alice, "s2", 10, CancellationToken.None)).Prompt);
        Assert.Equal("bob s1", Assert.Single(await _store.GetRecentAsync(bob, "s1", 10, CancellationToken.None)).Prompt);
        Assert.Equal("globex alice s1", Assert.Single(await _store.GetRecentAsync(otherTenantAlice, "s1", 10, CancellationToken.None)).Prompt);
        Assert.Empty(await _store.GetRecentAsync(bob, "s2", 10, CancellationToken.None));
        Assert.Equal(2, (await _store.UsageAsync(Alice, CancellationToken.None)).Items);
        Assert.Equal(1, (await _store.UsageAsync(bob, CancellationToken.None)).Items);
    }

    private Task AppendAsync(AgentScope scope, string session, string prompt, TimeSpan ttl, int maxTurnsPerSession = 50) =>
        _store.AppendAsync(scope, session, new WorkingTurn(prompt, "reply to " + prompt, "id-" + prompt, _time.GetUtcNow()), ttl, maxTurnsPerSession, CancellationToken.None);

    /// <summary>Rows in the table, expired or not: what the sweep and the trim are about.</summary>
    private long RowCount()
    {
        using var connection = new SqliteDatabase(_folder.File("working.db"), SqliteWorkingMemoryStore.Schema).Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM working_turns";
        return (long)command.ExecuteScalar()!;
    }
}
