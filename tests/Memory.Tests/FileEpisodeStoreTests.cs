using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Memory.Tests;

public sealed class FileEpisodeStoreTests : IDisposable
{
    private static readonly AgentScope Alice = new("acme", "alice");
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task An_episode_is_written_under_tenant_agent_and_day()
    {
        var store = new FileEpisodeStore(_folder.Path);
        var at = new DateTimeOffset(2025, 12, 31, 23, 30, 0, TimeSpan.FromHours(-5)); // 2026-01-01 04:30 UTC

        var location = await store.AppendAsync(Alice, "interaction-1", at, """{"prompt":"hi"}""", CancellationToken.None);

        Assert.Equal("episodes/acme/alice/2026-01-01/interaction-1.json", location);
        var path = Path.Combine(_folder.Path, "episodes", "acme", "alice", "2026-01-01", "interaction-1.json");
        Assert.Equal("""{"prompt":"hi"}""", await File.ReadAllTextAsync(path));
        Assert.Single(Directory.EnumerateFiles(_folder.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Count_is_per_agent()
    {
        var store = new FileEpisodeStore(_folder.Path);
        var day = new DateTimeOffset(2025, 5, 1, 8, 0, 0, TimeSpan.Zero);
        await store.AppendAsync(Alice, "a1", day, "{}", CancellationToken.None);
        await store.AppendAsync(Alice, "a2", day.AddDays(1), "{}", CancellationToken.None);
        await store.AppendAsync(Alice, "a2", day.AddDays(1), "{}", CancellationToken.None);
        await store.AppendAsync(new AgentScope("acme", "bob"), "b1", day, "{}", CancellationToken.None);
        await store.AppendAsync(new AgentScope("globex", "alice"), "g1", day, "{}", CancellationToken.None);

        Assert.Equal(2, (await store.UsageAsync(Alice, CancellationToken.None)).Items);
        Assert.Equal(1, (await store.UsageAsync(new AgentScope("acme", "bob"), CancellationToken.None)).Items);
        Assert.Equal(1, (await store.UsageAsync(new AgentScope("globex", "alice"), CancellationToken.None)).Items);
        Assert.Equal(0, (await store.UsageAsync(new AgentScope("acme", "nobody"), CancellationToken.None)).Items);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("../globex/alice")]
    [InlineData("../../x")]
    [InlineData("../../../x")]
    [InlineData("..")]
    [InlineData("a\\b")]
    public async Task An_agent_name_that_is_not_one_plain_folder_name_is_rejected(string agent)
    {
        var store = new FileEpisodeStore(_folder.Path);
        var scope = new AgentScope("acme", agent);

        await Assert.ThrowsAsync<ArgumentException>(() => store.AppendAsync(scope, "i1", DateTimeOffset.UnixEpoch, "{}", CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.UsageAsync(scope, CancellationToken.None));
        Assert.Empty(Directory.EnumerateFiles(_folder.Path, "i1.json", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task An_interaction_id_that_climbs_into_another_agents_folder_is_rejected()
    {
        var store = new FileEpisodeStore(_folder.Path);

        await Assert.ThrowsAsync<ArgumentException>(() =>
            store.AppendAsync(Alice, "../../../globex/alice/1970-01-01/i3", DateTimeOffset.UnixEpoch, "{}", CancellationToken.None));
        Assert.Empty(Directory.EnumerateFiles(_folder.Path, "i3.json", SearchOption.AllDirectories));
    }
}
