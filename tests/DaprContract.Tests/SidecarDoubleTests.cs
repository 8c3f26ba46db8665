using Dapr;
using Dapr.Client;
using Microsoft.Extensions.Time.Testing;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>The double itself behaves as the sidecar the adapters are written against.</summary>
public sealed class SidecarDoubleTests : IAsyncLifetime
{
    private const string Store = "agent-working-memory";
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero));
    private SidecarDouble _sidecar = null!;

    public async Task InitializeAsync() => _sidecar = await SidecarDouble.StartAsync(_clock);

    public async Task DisposeAsync() => await _sidecar.DisposeAsync();

    private static Dictionary<string, string> Ttl(string seconds) => new() { ["ttlInSeconds"] = seconds };

    [Fact]
    public async Task DaprClient_calls_the_state_and_binding_methods_by_name_without_asking_server_reflection()
    {
        // Dapr.Client 1.19 resolves versioned method names through server reflection only for the APIs that
        // have versions; state and bindings go straight to their methods, which the double serves.
        await _sidecar.Client.SaveStateAsync(Store, "k", "v");
        await _sidecar.Client.GetStateAsync<string>(Store, "k");
        await Assert.ThrowsAsync<DaprException>(() => _sidecar.Client.InvokeBindingAsync(new BindingRequest("absent", "get")));
        Assert.True(await _sidecar.Client.CheckHealthAsync());

        Assert.Equal(
            ["/dapr.proto.runtime.v1.Dapr/SaveState", "/dapr.proto.runtime.v1.Dapr/GetState", "/dapr.proto.runtime.v1.Dapr/InvokeBinding", "/v1.0/healthz"],
            _sidecar.Paths);
        Assert.Empty(_sidecar.UnservedPaths);
    }

    [Fact]
    public async Task State_expires_by_ttlInSeconds_on_the_controlled_clock_and_minus_one_never_does()
    {
        await _sidecar.Client.SaveStateAsync(Store, "short", "v", metadata: Ttl("10"));
        await _sidecar.Client.SaveStateAsync(Store, "forever", "v", metadata: Ttl("-1"));
        await _sidecar.Client.SaveStateAsync(Store, "plain", "v");

        _clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal("v", await _sidecar.Client.GetStateAsync<string>(Store, "short"));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await _sidecar.Client.GetStateAsync<string>(Store, "short"));
        _clock.Advance(TimeSpan.FromDays(1000));
        Assert.Equal(["forever", "plain"], _sidecar.StateKeys(Store));
    }

    [Fact]
    public async Task Etags_and_first_write_guard_writes_as_dapr_specifies()
    {
        var firstWrite = new StateOptions { Concurrency = ConcurrencyMode.FirstWrite };
        Assert.True(await _sidecar.Client.TrySaveStateAsync(Store, "k", "1", "", firstWrite));
        Assert.False(await _sidecar.Client.TrySaveStateAsync(Store, "k", "2", "", firstWrite));   // exists already

        var (value, etag) = await _sidecar.Client.GetStateAndETagAsync<string>(Store, "k");
        Assert.Equal("1", value);
        Assert.True(await _sidecar.Client.TrySaveStateAsync(Store, "k", "3", etag, firstWrite));
        Assert.False(await _sidecar.Client.TrySaveStateAsync(Store, "k", "4", etag, firstWrite)); // stale ETag
        Assert.Equal("3", await _sidecar.Client.GetStateAsync<string>(Store, "k"));
        Assert.False(await _sidecar.Client.TryDeleteStateAsync(Store, "k", etag));
    }

    [Fact]
    public async Task Bad_keys_and_ttls_are_refused_like_daprd_refuses_them()
    {
        await Assert.ThrowsAsync<DaprException>(() => _sidecar.Client.SaveStateAsync(Store, "a||b", "v"));
        await Assert.ThrowsAsync<DaprException>(() => _sidecar.Client.SaveStateAsync(Store, "k", "v", metadata: Ttl("soon")));
        await Assert.ThrowsAsync<DaprException>(() => _sidecar.Client.SaveStateAsync(Store, "k", "v", metadata: Ttl("0")));
        Assert.Empty(_sidecar.StateKeys(Store));
    }

    [Fact]
    public void Go_unquote_is_modelled_for_the_payload_forms_the_blob_bindings_unquote()
    {
        Assert.Equal("abc", BlobBinding.GoUnquote("\"abc\""));
        Assert.Equal("a\"b\\c\nd✓", BlobBinding.GoUnquote("\"a\\\"b\\\\c\\nd✓\""));
        Assert.Equal("raw \\n", BlobBinding.GoUnquote("`raw \\n`"));
        Assert.Null(BlobBinding.GoUnquote("{\"a\":1}"));
        Assert.Null(BlobBinding.GoUnquote("\"unterminated"));
        Assert.Null(BlobBinding.GoUnquote("\"bad \\q escape\""));
        var json = "\"quoted \\\" and ✓ and \u0001\"";
        Assert.Equal(json, BlobBinding.GoUnquote(PersistentAgents.Memory.Dapr.BlobEpisodeStore.GoQuote(json)));
    }
}
