using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using PersistentAgents.Contracts;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Dapr;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>BlobEpisodeStore against the double's S3, Azure Blob and localstorage bindings.</summary>
public sealed class BlobEpisodeStoreContractTests : IAsyncLifetime
{
    private static readonly AgentScope Router = new("acme", "email-router");
    private static readonly DateTimeOffset Noon = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly DateOnly Today = DateOnly.FromDateTime(Noon.UtcDateTime);
    private SidecarDouble _sidecar = null!;

    public static TheoryData<BlobFlavour> Flavours => [BlobFlavour.S3, BlobFlavour.AzureBlob, BlobFlavour.LocalStorage];

    public async Task InitializeAsync() => _sidecar = await SidecarDouble.StartAsync(new FakeTimeProvider(Noon));

    public async Task DisposeAsync() => await _sidecar.DisposeAsync();

    /// <summary>A store and its backend. A small page size makes every listing span several pages.</summary>
    private (BlobEpisodeStore Store, BlobBinding Blobs) Start(BlobFlavour flavour, string localRoot = "/var/lib/dapr/episode-blobs")
    {
        var blobs = new BlobBinding(flavour, localRoot, maxPageSize: 2);
        _sidecar.AddBinding(DaprComponents.EpisodicMemory, blobs);
        return (new BlobEpisodeStore(_sidecar.Client, flavour), blobs);
    }

    private static string Episode(string id) => JsonSerializer.Serialize(new { interactionId = id, taskType = "email_routing", prompt = "héllo \"quoted\"\n" });

    private List<BindingCall> Calls(string operation) =>
        _sidecar.BindingCalls.Where(c => c.Name == DaprComponents.EpisodicMemory && c.Operation == operation).ToList();

    [Theory]
    [MemberData(nameof(Flavours))]
    public async Task Append_creates_the_blob_under_the_flavours_metadata_key_with_a_payload_that_survives(BlobFlavour flavour)
    {
        var (store, blobs) = Start(flavour);
        var json = Episode("i1");

        var location = await store.AppendAsync(Router, "i1", Noon, json, CancellationToken.None);

        Assert.Equal("episodes/acme/email-router/2026-03-01/i1.json", location);
        var create = Assert.Single(Calls("create"));
        var key = flavour switch { BlobFlavour.S3 => "key", BlobFlavour.AzureBlob => "blobName", _ => "fileName" };
        Assert.Equal(location, create.Metadata[key]);
        Assert.DoesNotContain(create.Metadata.Keys, k => k != key && k is "key" or "blobName" or "fileName");
        switch (flavour)
        {
            case BlobFlavour.S3:
                Assert.Equal("true", create.Metadata["decodeBase64"]);
                Assert.Equal(json, Encoding.UTF8.GetString(Convert.FromBase64String(Encoding.UTF8.GetString(create.Data))));
                break;
            case BlobFlavour.LocalStorage:
                Assert.Equal(json, Encoding.UTF8.GetString(Convert.FromBase64String(Encoding.UTF8.GetString(create.Data))));
                break;
            default:
                Assert.Equal(json, Encoding.UTF8.GetString(create.Data));
                Assert.Equal("application/json", create.Metadata["contentType"]);
                break;
        }

        Assert.Equal(json, Encoding.UTF8.GetString(blobs.Blob(location)!));
        Assert.Equal(json, await store.GetAsync(Router, "i1", Today, CancellationToken.None));
        Assert.Equal(location, Assert.Single(Calls("get")).Metadata[key]);
        Assert.Empty(_sidecar.UnservedPaths);
    }

    [Theory]
    [MemberData(nameof(Flavours))]
    public async Task Payloads_the_bindings_would_unquote_or_base64_decode_are_stored_unchanged(BlobFlavour flavour)
    {
        var (store, blobs) = Start(flavour);

        // Valid base64 (localstorage would decode it), a Go string literal (every binding would unquote it),
        // and a backquoted one.
        string[] payloads = ["1234", "\"abcd\"", "\"line\\nbreak ✓\"", "`raw`", "{\"a\":\"\\\"\"}"];
        for (var i = 0; i < payloads.Length; i++)
        {
            var name = await store.AppendAsync(Router, $"p{i}", Noon, payloads[i], CancellationToken.None);
            Assert.Equal(payloads[i], Encoding.UTF8.GetString(blobs.Blob(name)!));
            Assert.Equal(payloads[i], await store.GetAsync(Router, $"p{i}", Today, CancellationToken.None));
        }
    }

    [Theory]
    [MemberData(nameof(Flavours))]
    public async Task A_missing_episode_reads_as_null_whatever_error_the_binding_gives(BlobFlavour flavour)
    {
        var (store, _) = Start(flavour);

        Assert.Null(await store.GetAsync(Router, "absent", Today, CancellationToken.None));
        Assert.NotEqual("ok", Assert.Single(Calls("get")).Outcome);
        Assert.Empty(await store.ListAsync(Router, DateOnly.MinValue, DateOnly.MaxValue, 10, CancellationToken.None));
        Assert.Equal(new TierUsage(0, 0), await store.UsageAsync(Router, CancellationToken.None));
    }

    [Theory]
    [MemberData(nameof(Flavours))]
    public async Task List_sends_the_flavours_request_and_returns_the_day_range_oldest_first(BlobFlavour flavour)
    {
        var (store, _) = Start(flavour);
        var other = Router with { Agent = "email-router-2" };  // a name that extends the agent's: must not match its prefix
        foreach (var (id, days) in new[] { ("c", -2), ("a", -2), ("b", -1), ("d", 0), ("e", -5) })
        {
            await store.AppendAsync(Router, id, Noon.AddDays(days), Episode(id), CancellationToken.None);
        }

        await store.AppendAsync(other, "x", Noon, Episode("x"), CancellationToken.None);

        var all = await store.ListAsync(Router, DateOnly.MinValue, DateOnly.MaxValue, 100, CancellationToken.None);
        Assert.Equal(["e", "a", "c", "b", "d"], all.Select(e => e.InteractionId));
        Assert.Equal("episodes/acme/email-router/2026-02-27/a.json", all[1].Location);
        Assert.Equal(Today.AddDays(-2), all[1].Day);
        var size = Encoding.UTF8.GetByteCount(Episode("a"));
        Assert.Equal(flavour == BlobFlavour.LocalStorage ? 0 : size, all[1].Bytes);

        var range = await store.ListAsync(Router, Today.AddDays(-2), Today.AddDays(-1), 2, CancellationToken.None);
        Assert.Equal(["a", "c"], range.Select(e => e.InteractionId));

        var list = Calls("list");
        Assert.NotEmpty(list);
        if (flavour == BlobFlavour.LocalStorage)
        {
            Assert.All(list, c => Assert.Equal("episodes/acme/email-router", c.Metadata["fileName"]));
            Assert.All(list, c => Assert.Empty(c.Data));
        }
        else
        {
            var first = JsonDocument.Parse(list[0].Data).RootElement;
            Assert.Equal("episodes/acme/email-router/", first.GetProperty("prefix").GetString());
            Assert.Equal("", first.GetProperty("marker").GetString());
            Assert.True(first.GetProperty("maxResults").GetInt32() > 0);

            // Five blobs at a page size of two: three pages per listing, each continuing from a marker.
            Assert.True(list.Count >= 3, $"expected paging, got {list.Count} list calls");
            Assert.NotEqual("", JsonDocument.Parse(list[1].Data).RootElement.GetProperty("marker").GetString());
        }
    }

    [Theory]
    [MemberData(nameof(Flavours))]
    public async Task Retention_deletes_only_episodes_of_days_before_the_cutoff_across_agents(BlobFlavour flavour)
    {
        var (store, blobs) = Start(flavour);
        var billing = Router with { Agent = "billing" };
        var globex = new AgentScope("globex", "email-router");
        await store.AppendAsync(Router, "old1", Noon.AddDays(-100), Episode("old1"), CancellationToken.None);
        await store.AppendAsync(billing, "old2", Noon.AddDays(-91), Episode("old2"), CancellationToken.None);
        await store.AppendAsync(globex, "edge", Noon.AddDays(-90), Episode("edge"), CancellationToken.None);
        await store.AppendAsync(Router, "new", Noon.AddDays(-1), Episode("new"), CancellationToken.None);

        Assert.Equal([Router, billing, globex], (await store.ListScopesAsync(CancellationToken.None)).OrderBy(s => s.Tenant).ThenByDescending(s => s.Agent).ToArray());

        Assert.Equal(2, await store.DeleteBeforeAsync(Today.AddDays(-90), CancellationToken.None));

        Assert.Equal(
            ["episodes/acme/billing/2025-11-30/old2.json", "episodes/acme/email-router/2025-11-21/old1.json"],
            Calls("delete").Select(c => c.Metadata[BlobEpisodeStore.NameMetadataKey(flavour)]).Order(StringComparer.Ordinal));
        Assert.Equal(
            ["episodes/acme/email-router/2026-02-28/new.json", "episodes/globex/email-router/2025-12-01/edge.json"],
            blobs.Names);
        Assert.Equal(0, await store.DeleteBeforeAsync(Today.AddDays(-90), CancellationToken.None));
    }

    [Theory]
    [MemberData(nameof(Flavours))]
    public async Task Purge_and_usage_touch_only_that_agent(BlobFlavour flavour)
    {
        var (store, blobs) = Start(flavour);
        var longer = Router with { Agent = "email-router-2" };
        var otherTenant = new AgentScope("globex", "email-router");
        await store.AppendAsync(Router, "a", Noon, Episode("a"), CancellationToken.None);
        await store.AppendAsync(Router, "b", Noon.AddDays(-3), Episode("b"), CancellationToken.None);
        await store.AppendAsync(longer, "c", Noon, Episode("c"), CancellationToken.None);
        await store.AppendAsync(otherTenant, "d", Noon, Episode("d"), CancellationToken.None);

        Assert.Equal(new TierUsage(2, Encoding.UTF8.GetByteCount(Episode("a")) + Encoding.UTF8.GetByteCount(Episode("b"))),
            await store.UsageAsync(Router, CancellationToken.None));

        Assert.Equal(2, await store.PurgeAsync(Router, CancellationToken.None));

        Assert.Equal(["episodes/acme/email-router-2/2026-03-01/c.json", "episodes/globex/email-router/2026-03-01/d.json"], blobs.Names);
        Assert.Equal(new TierUsage(0, 0), await store.UsageAsync(Router, CancellationToken.None));
        Assert.Equal(1, (await store.UsageAsync(longer, CancellationToken.None)).Items);
        Assert.Equal(0, await store.PurgeAsync(Router, CancellationToken.None));
    }

    [Fact]
    public async Task Localstorage_paths_are_read_back_from_their_tail_whatever_the_root()
    {
        // A root that itself contains "episodes" segments must not confuse the parsing of absolute paths.
        var (store, _) = Start(BlobFlavour.LocalStorage, localRoot: "/srv/episodes/episodes/acme");
        await store.AppendAsync(Router, "i1", Noon, Episode("i1"), CancellationToken.None);
        await store.AppendAsync(new AgentScope("episodes", "episodes"), "i2", Noon, Episode("i2"), CancellationToken.None);

        var listed = Assert.Single(await store.ListAsync(Router, Today, Today, 10, CancellationToken.None));
        Assert.Equal("episodes/acme/email-router/2026-03-01/i1.json", listed.Location);
        Assert.Equal([new AgentScope("acme", "email-router"), new AgentScope("episodes", "episodes")],
            (await store.ListScopesAsync(CancellationToken.None)).OrderBy(s => s.Tenant).ToArray());
        Assert.Contains(_sidecar.BindingCalls, c => c.Operation == "list" && c.Outcome == "ok");
    }

    [Theory]
    [InlineData("acme", "../billing", "i")]
    [InlineData("acme", "a/b", "i")]
    [InlineData("..", "agent", "i")]
    [InlineData("acme", "agent", "x/../../y")]
    [InlineData("", "agent", "i")]
    public async Task Names_that_are_not_one_plain_segment_are_refused_before_anything_is_sent(string tenant, string agent, string id)
    {
        var (store, _) = Start(BlobFlavour.S3);
        var scope = new AgentScope(tenant, agent);

        await Assert.ThrowsAsync<ArgumentException>(() => store.AppendAsync(scope, id, Noon, "{}", CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.GetAsync(scope, id, Today, CancellationToken.None));
        if (id == "i")
        {
            await Assert.ThrowsAsync<ArgumentException>(() => store.PurgeAsync(scope, CancellationToken.None));
            await Assert.ThrowsAsync<ArgumentException>(() => store.ListAsync(scope, Today, Today, 10, CancellationToken.None));
        }

        Assert.Empty(_sidecar.BindingCalls);
    }
}
