using Yarp.ReverseProxy.Forwarder;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Dapr.Client;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Autogen = Dapr.Client.Autogen.Grpc.v1;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>What the double received on one state call, as a real sidecar would receive it.</summary>
public sealed record StateCall(
    string Method,
    string Store,
    string Key,
    string? Etag,
    string Concurrency,
    IReadOnlyDictionary<string, string> Metadata,
    byte[]? Value,
    string Outcome);

/// <summary>What the double received on one output binding call.</summary>
/// <summary>One actor method call the sidecar forwarded, with when it started and ended on the sidecar's clock.</summary>
public sealed record ActorCall(string Type, string Id, string Method, DateTimeOffset Started, DateTimeOffset Ended);

/// <summary>One event as the app handed it to its sidecar; the sidecar wraps it in a CloudEvent.</summary>
public sealed record PublishedEvent(string PubSub, string Topic, string ContentType, byte[] Data, IReadOnlyDictionary<string, string> Metadata);

public sealed record BindingCall(string Name, string Operation, IReadOnlyDictionary<string, string> Metadata, byte[] Data, string Outcome);

/// <summary>An output binding behind the double: it answers as the real binding would, or throws <see cref="BindingFailedException"/>.</summary>
public interface IBindingBackend
{
    Task<Autogen.InvokeBindingResponse> InvokeAsync(Autogen.InvokeBindingRequest request, CancellationToken cancellationToken);
}

/// <summary>A binding failure: the sidecar reports it as INTERNAL "error invoking output binding {name}: {message}".</summary>
public sealed class BindingFailedException(string message) : Exception(message);

/// <summary>
/// A Dapr sidecar double: a Kestrel server on 127.0.0.1 that serves the <c>dapr.proto.runtime.v1.Dapr</c>
/// gRPC methods the memory adapters use (bound by hand from the <c>Dapr.Protos</c> messages, which ship
/// client stubs only) over cleartext HTTP/2, and Dapr's HTTP health routes over HTTP/1.1.
/// <para>
/// It records every request (store, key, ETag, concurrency, metadata such as <c>ttlInSeconds</c>; binding
/// name, operation, metadata such as <c>sql</c>/<c>params</c>/<c>key</c>/<c>blobName</c>, payload) so tests
/// assert what a real sidecar would receive, and it behaves like a backend: an in-memory state store that
/// honours <c>ttlInSeconds</c> against a controllable clock and ETags with Dapr's first-write semantics,
/// and output bindings supplied by the test (<see cref="PostgresBinding"/>, <see cref="BlobBinding"/>).
/// Every gRPC path it is asked for is recorded too, including ones it does not serve.
/// </para>
/// </summary>
public sealed class SidecarDouble : IAsyncDisposable
{
    public const string ServiceName = "dapr.proto.runtime.v1.Dapr";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, IBindingBackend> _bindings = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<StateCall> _stateCalls = new();
    private readonly ConcurrentQueue<BindingCall> _bindingCalls = new();
    private readonly ConcurrentQueue<string> _paths = new();
    private readonly ConcurrentQueue<PublishedEvent> _published = new();
    private readonly ConcurrentBag<Subscriber> _subscribers = [];
    private readonly ConcurrentQueue<(string Topic, string EventId, string Status)> _deliveries = new();
    private readonly ConcurrentQueue<(string AppId, string Path)> _invocations = new();
    private readonly ConcurrentDictionary<string, Uri> _apps = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Uri> _actorHosts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Type, string Id), SemaphoreSlim> _actorTurns = new();
    private readonly ConcurrentQueue<ActorCall> _actorCalls = new();
    private readonly Dictionary<(string Type, string Id, string Key), string> _actorState = [];
    private readonly HttpClient _actorClient = new();
    private readonly ConcurrentDictionary<(string Type, string Id, string Name), string> _reminders = new();
    private readonly HttpMessageInvoker _forwardingClient = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = false });
    private readonly ConcurrentDictionary<(string Store, string Name), string> _secrets = new();
    private readonly Lock _stateLock = new();
    private readonly Dictionary<(string Store, string Key), StoredState> _state = [];
    private long _nextEtag;

    private SidecarDouble(WebApplication app, TimeProvider clock)
    {
        _app = app;
        Clock = clock;
    }

    /// <summary>The clock against which state expires (a FakeTimeProvider in tests).</summary>
    public TimeProvider Clock { get; }

    public int GrpcPort { get; private set; }

    public int HttpPort { get; private set; }

    public DaprClient Client { get; private set; } = null!;

    public IReadOnlyList<StateCall> StateCalls => [.. _stateCalls];

    public IReadOnlyList<BindingCall> BindingCalls => [.. _bindingCalls];

    /// <summary>Every request path the double received (gRPC method paths and HTTP routes).</summary>
    public IReadOnlyList<string> Paths => [.. _paths];

    /// <summary>Paths the double does not serve; a real sidecar of this version would serve them.</summary>
    public IReadOnlyList<string> UnservedPaths => [.. _paths.Where(p => !Served.Contains(p))];

    /// <summary>Runs before a SaveState is applied: lets a test slip in another writer between a read and a write.</summary>
    public Func<Autogen.SaveStateRequest, Task>? BeforeSave { get; set; }

    /// <summary>Runs before a state transaction is applied, as <see cref="BeforeSave"/> does for a save.</summary>
    public Func<Autogen.ExecuteStateTransactionRequest, Task>? BeforeTransaction { get; set; }

    private static readonly HashSet<string> Served =
    [
        $"/{ServiceName}/GetState", $"/{ServiceName}/GetBulkState", $"/{ServiceName}/SaveState",
        $"/{ServiceName}/DeleteState", $"/{ServiceName}/DeleteBulkState", $"/{ServiceName}/ExecuteStateTransaction",
        $"/{ServiceName}/InvokeBinding", $"/{ServiceName}/GetSecret", $"/{ServiceName}/PublishEvent", "/v1.0/healthz", "/v1.0/healthz/outbound", "/v1.0/metadata",
    ];

    public static async Task<SidecarDouble> StartAsync(TimeProvider clock)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        ListenOptions? grpc = null, http = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, o =>
            {
                o.Protocols = HttpProtocols.Http2;
                grpc = o;
            });
            kestrel.Listen(IPAddress.Loopback, 0, o =>
            {
                o.Protocols = HttpProtocols.Http1;
                http = o;
            });
        });
        // Unknown services are not answered "unimplemented": they are other apps' methods, proxied below.
        builder.Services.AddGrpc(o =>
        {
            o.EnableDetailedErrors = true;
            o.IgnoreUnknownServices = true;
        });
        builder.Services.AddHttpForwarder();
        builder.Services.AddSingleton<IServiceMethodProvider<DaprService>, DaprMethodProvider>();
        builder.Services.AddSingleton<DaprService>();

        var app = builder.Build();
        var sidecar = new SidecarDouble(app, clock);
        app.Services.GetRequiredService<DaprService>().Sidecar = sidecar;
        app.Use(async (context, next) =>
        {
            sidecar._paths.Enqueue(context.Request.Path.Value ?? "");
            await next(context);
        });
        app.MapGrpcService<DaprService>();
        app.MapGet("/v1.0/healthz", () => Results.NoContent());
        app.MapGet("/v1.0/healthz/outbound", () => Results.NoContent());
        app.MapGet("/v1.0/metadata", () => Results.Json(new { id = "memory" }));
        app.MapMethods("/v1.0/actors/{type}/{id}/method/{**method}", ["PUT", "POST"], sidecar.InvokeActorAsync);
        app.MapGet("/v1.0/actors/{type}/{id}/state/{key}", sidecar.GetActorState);
        app.MapMethods("/v1.0/actors/{type}/{id}/state", ["PUT", "POST"], sidecar.SaveActorStateAsync);
        app.MapMethods("/v1.0/actors/{type}/{id}/reminders/{name}", ["PUT", "POST"], sidecar.RegisterReminderAsync);
        app.MapDelete("/v1.0/actors/{type}/{id}/reminders/{name}", (string type, string id, string name) =>
        {
            sidecar._reminders.TryRemove((type, id, name), out _);
            return Results.NoContent();
        });
        app.Map("/{**path}", sidecar.ProxyInvocationAsync);

        await app.StartAsync();
        sidecar.GrpcPort = grpc!.IPEndPoint!.Port;
        sidecar.HttpPort = http!.IPEndPoint!.Port;
        sidecar.Client = new DaprClientBuilder()
            .UseGrpcEndpoint($"http://127.0.0.1:{sidecar.GrpcPort}")
            .UseHttpEndpoint($"http://127.0.0.1:{sidecar.HttpPort}")
            .Build();
        return sidecar;
    }

    /// <summary>Puts an output binding behind the component name.</summary>
    public void AddBinding(string name, IBindingBackend backend) => _bindings[name] = backend;

    /// <summary>gRPC calls proxied to other apps (service invocation), in order: the target app id and the method path.</summary>
    public IReadOnlyList<(string AppId, string Path)> Invocations => [.. _invocations];

    /// <summary>Actor state as the sidecar holds it: (actor type, actor id, key) → the value's JSON.</summary>
    public IReadOnlyDictionary<(string Type, string Id, string Key), string> ActorState
    {
        get
        {
            lock (_stateLock)
            {
                return new Dictionary<(string, string, string), string>(_actorState);
            }
        }
    }

    /// <summary>Actor method calls forwarded to the actor host, in order, with when each started and ended.</summary>
    public IReadOnlyList<ActorCall> ActorCalls => [.. _actorCalls];

    /// <summary>
    /// Places actors of the types <paramref name="actorHost"/> registers (asked through its <c>/dapr/config</c>,
    /// as daprd does) on that app; returns the types.
    /// </summary>
    public async Task<IReadOnlyList<string>> RegisterActorHostAsync(Uri actorHost)
    {
        using var config = await _actorClient.GetAsync(new Uri(actorHost, "/dapr/config"));
        config.EnsureSuccessStatusCode();
        using var json = System.Text.Json.JsonDocument.Parse(await config.Content.ReadAsStringAsync());
        var types = json.RootElement.GetProperty("entities").EnumerateArray().Select(e => e.GetString()!).ToList();
        foreach (var type in types)
        {
            _actorHosts[type] = actorHost;
        }

        return types;
    }

    /// <summary>
    /// Delivers a pub/sub message to an app that speaks HTTP, as daprd does: asks its <c>/dapr/subscribe</c>
    /// for the route of the topic and posts a CloudEvent 1.0 there.
    /// </summary>
    /// <returns>The app's HTTP status and the status it answered ("SUCCESS", "RETRY", "DROP" or empty).</returns>
    public async Task<(int Http, string Status)> DeliverAsync(Uri app, string pubSub, string topic, string eventId, string dataJson)
    {
        using var subscriptions = System.Text.Json.JsonDocument.Parse(await _actorClient.GetStringAsync(new Uri(app, "/dapr/subscribe")));
        var route = subscriptions.RootElement.EnumerateArray()
            .Single(s => s.GetProperty("pubsubname").GetString() == pubSub && s.GetProperty("topic").GetString() == topic)
            .GetProperty("route").GetString()!;
        var cloudEvent = new System.Text.Json.Nodes.JsonObject
        {
            ["specversion"] = "1.0",
            ["id"] = eventId,
            ["source"] = "outside-program",
            ["type"] = "com.dapr.event.sent",
            ["datacontenttype"] = "application/json",
            ["topic"] = topic,
            ["pubsubname"] = pubSub,
            ["data"] = System.Text.Json.Nodes.JsonNode.Parse(dataJson) ?? dataJson,
        };
        using var content = new StringContent(cloudEvent.ToJsonString(), System.Text.Encoding.UTF8, "application/cloudevents+json");
        using var response = await _actorClient.PostAsync(new Uri(app, route), content);
        var text = await response.Content.ReadAsStringAsync();
        var status = text.Length > 0 && text.TrimStart().StartsWith('{')
            ? System.Text.Json.JsonDocument.Parse(text).RootElement.TryGetProperty("status", out var s) ? s.GetString() ?? "" : ""
            : "";
        return ((int)response.StatusCode, status);
    }

    /// <summary>Reminders the actors registered: (type, id, name) → the registration's JSON (dueTime, period, data).</summary>
    public IReadOnlyDictionary<(string Type, string Id, string Name), string> Reminders => new Dictionary<(string, string, string), string>(_reminders);

    /// <summary>Fires a registered reminder, as the runtime does when it is due: a turn of the actor like any call.</summary>
    public async Task TriggerReminderAsync(string type, string id, string name)
    {
        var registration = _reminders[(type, id, name)];
        var turn = _actorTurns.GetOrAdd((type, id), _ => new SemaphoreSlim(1, 1));
        await turn.WaitAsync();
        try
        {
            using var content = new StringContent(registration, System.Text.Encoding.UTF8, "application/json");
            using var response = await _actorClient.PutAsync(new Uri(_actorHosts[type], $"/actors/{type}/{Uri.EscapeDataString(id)}/method/remind/{name}"), content);
            response.EnsureSuccessStatusCode();
        }
        finally
        {
            turn.Release();
        }
    }

    /// <summary>Deactivates an actor on its host, as the runtime does after its idle timeout.</summary>
    public async Task DeactivateActorAsync(string type, string id)
    {
        using var response = await _actorClient.DeleteAsync(new Uri(_actorHosts[type], $"/actors/{type}/{Uri.EscapeDataString(id)}"));
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Makes an app reachable by service invocation through this sidecar.</summary>
    public void RegisterApp(string appId, Uri address) => _apps[appId] = address;

    /// <summary>Events published through the sidecar, in order.</summary>
    public IReadOnlyList<PublishedEvent> Published => [.. _published];

    /// <summary>Puts a secret in a secret store.</summary>
    public void AddSecret(string store, string name, string value) => _secrets[(store, name)] = value;

    /// <summary>The live (unexpired) value of a key, or null.</summary>
    public byte[]? StateValue(string store, string key)
    {
        lock (_stateLock)
        {
            return Live(store, key)?.Value;
        }
    }

    /// <summary>When a key expires (null: never, or no such key).</summary>
    public DateTimeOffset? StateExpiry(string store, string key)
    {
        lock (_stateLock)
        {
            return Live(store, key)?.ExpiresAt;
        }
    }

    /// <summary>Every live key of a store, as the backend holds them.</summary>
    public IReadOnlyList<string> StateKeys(string store)
    {
        lock (_stateLock)
        {
            return _state.Keys.Where(k => k.Store == store && Live(store, k.Key) is not null).Select(k => k.Key).Order(StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>Another writer changes a key behind the adapter's back (new ETag, no expiry change).</summary>
    public void OverwriteState(string store, string key, byte[] value)
    {
        lock (_stateLock)
        {
            var current = Live(store, key);
            _state[(store, key)] = new StoredState(value, NextEtag(), current?.ExpiresAt);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        _forwardingClient.Dispose();
        _actorClient.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    // ---- state store -------------------------------------------------------------------------------

    internal Autogen.GetStateResponse GetState(Autogen.GetStateRequest request)
    {
        lock (_stateLock)
        {
            ValidateKey(request.Key);
            var stored = Live(request.StoreName, request.Key);
            Record("GetState", request.StoreName, request.Key, null, null, request.Metadata, null, stored is null ? "missing" : "found");
            var response = new Autogen.GetStateResponse();
            if (stored is not null)
            {
                response.Data = ByteString.CopyFrom(stored.Value);
                response.Etag = stored.Etag;
            }

            return response;
        }
    }

    internal Autogen.GetBulkStateResponse GetBulkState(Autogen.GetBulkStateRequest request)
    {
        lock (_stateLock)
        {
            var response = new Autogen.GetBulkStateResponse();
            foreach (var key in request.Keys)
            {
                ValidateKey(key);
                var stored = Live(request.StoreName, key);
                Record("GetBulkState", request.StoreName, key, null, null, request.Metadata, null, stored is null ? "missing" : "found");
                var item = new Autogen.BulkStateItem { Key = key };
                if (stored is not null)
                {
                    item.Data = ByteString.CopyFrom(stored.Value);
                    item.Etag = stored.Etag;
                }

                response.Items.Add(item);
            }

            return response;
        }
    }

    internal async Task<Empty> SaveStateAsync(Autogen.SaveStateRequest request)
    {
        if (BeforeSave is { } hook)
        {
            await hook(request);
        }

        lock (_stateLock)
        {
            // A real store applies the items one by one; the double checks them all first so a failed
            // request changes nothing, which is what the adapters may assume of a single-item save.
            foreach (var item in request.States)
            {
                Check(request.StoreName, item, "SaveState");
            }

            foreach (var item in request.States)
            {
                Upsert(request.StoreName, item);
            }
        }

        return new Empty();
    }

    internal Empty DeleteState(Autogen.DeleteStateRequest request)
    {
        var item = new Autogen.StateItem { Key = request.Key, Etag = request.Etag, Options = request.Options };
        item.Metadata.Add(request.Metadata);
        lock (_stateLock)
        {
            CheckDelete(request.StoreName, item, "DeleteState");
            _state.Remove((request.StoreName, request.Key));
        }

        return new Empty();
    }

    internal Empty DeleteBulkState(Autogen.DeleteBulkStateRequest request)
    {
        lock (_stateLock)
        {
            foreach (var item in request.States)
            {
                CheckDelete(request.StoreName, item, "DeleteBulkState");
            }

            foreach (var item in request.States)
            {
                _state.Remove((request.StoreName, item.Key));
            }
        }

        return new Empty();
    }

    internal async Task<Empty> ExecuteStateTransactionAsync(Autogen.ExecuteStateTransactionRequest request)
    {
        if (BeforeTransaction is { } hook)
        {
            await hook(request);
        }

        lock (_stateLock)
        {
            foreach (var operation in request.Operations)
            {
                switch (operation.OperationType)
                {
                    case "upsert": Check(request.StoreName, operation.Request, "ExecuteStateTransaction/upsert"); break;
                    case "delete": CheckDelete(request.StoreName, operation.Request, "ExecuteStateTransaction/delete"); break;
                    default: throw new RpcException(new Status(StatusCode.InvalidArgument, $"operation type {operation.OperationType} not supported"));
                }
            }

            foreach (var operation in request.Operations)
            {
                if (operation.OperationType == "upsert")
                {
                    Upsert(request.StoreName, operation.Request);
                }
                else
                {
                    _state.Remove((request.StoreName, operation.Request.Key));
                }
            }
        }

        return new Empty();
    }

    private void Check(string store, Autogen.StateItem item, string method)
    {
        ValidateKey(item.Key);
        var etag = item.Etag?.Value;
        var concurrency = item.Options?.Concurrency ?? Autogen.StateOptions.Types.StateConcurrency.ConcurrencyUnspecified;
        var ttlError = TtlError(item.Metadata);
        var current = Live(store, item.Key);
        string? conflict = null;
        if (!string.IsNullOrEmpty(etag))
        {
            if (current is null || current.Etag != etag)
            {
                conflict = "possible etag mismatch";
            }
        }
        else if (concurrency == Autogen.StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite && current is not null)
        {
            // First-write without an ETag: the key must not exist yet.
            conflict = "possible etag mismatch: first-write on an existing key without an etag";
        }

        Record(method, store, item.Key, etag, ConcurrencyName(concurrency), item.Metadata, item.Value.ToByteArray(),
            ttlError ?? conflict ?? "saved");
        if (ttlError is not null)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, ttlError));
        }

        if (conflict is not null)
        {
            throw new RpcException(new Status(StatusCode.Aborted, $"failed saving state in state store {store}: {conflict}"));
        }
    }

    private void CheckDelete(string store, Autogen.StateItem item, string method)
    {
        ValidateKey(item.Key);
        var etag = item.Etag?.Value;
        var current = Live(store, item.Key);
        var conflict = !string.IsNullOrEmpty(etag) && (current is null || current.Etag != etag);
        Record(method, store, item.Key, etag, ConcurrencyName(item.Options?.Concurrency ?? default), item.Metadata, null,
            conflict ? "possible etag mismatch" : current is null ? "missing" : "deleted");
        if (conflict)
        {
            throw new RpcException(new Status(StatusCode.Aborted, $"failed deleting state with key {item.Key}: possible etag mismatch"));
        }
    }

    private void Upsert(string store, Autogen.StateItem item)
    {
        DateTimeOffset? expires = null;
        if (item.Metadata.TryGetValue("ttlInSeconds", out var ttl) && long.Parse(ttl, CultureInfo.InvariantCulture) is var seconds && seconds > 0)
        {
            expires = Clock.GetUtcNow().AddSeconds(seconds);
        }

        _state[(store, item.Key)] = new StoredState(item.Value.ToByteArray(), NextEtag(), expires);
    }

    /// <summary>Dapr accepts an integer; -1 means never expire. The double also refuses 0, which stores treat inconsistently.</summary>
    private static string? TtlError(Google.Protobuf.Collections.MapField<string, string> metadata) =>
        !metadata.TryGetValue("ttlInSeconds", out var ttl) ? null
        : !long.TryParse(ttl, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds) ? $"ttlInSeconds '{ttl}' is not an integer"
        : seconds is 0 or < -1 ? $"ttlInSeconds '{ttl}' must be -1 or positive"
        : null;

    /// <summary>Dapr prefixes keys with "appid||" itself and refuses keys that contain the separator.</summary>
    private static void ValidateKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.Contains("||", StringComparison.Ordinal))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"input key/keyPrefix '{key}' can't contain '||'"));
        }
    }

    private StoredState? Live(string store, string key)
    {
        if (!_state.TryGetValue((store, key), out var stored))
        {
            return null;
        }

        if (stored.ExpiresAt is { } expires && expires <= Clock.GetUtcNow())
        {
            _state.Remove((store, key));
            return null;
        }

        return stored;
    }

    private string NextEtag() => Interlocked.Increment(ref _nextEtag).ToString(CultureInfo.InvariantCulture);

    private void Record(string method, string store, string key, string? etag, string? concurrency, IDictionary<string, string> metadata, byte[]? value, string outcome) =>
        _stateCalls.Enqueue(new StateCall(method, store, key, etag, concurrency ?? "", new Dictionary<string, string>(metadata), value, outcome));

    private static string ConcurrencyName(Autogen.StateOptions.Types.StateConcurrency concurrency) => concurrency switch
    {
        Autogen.StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite => "first-write",
        Autogen.StateOptions.Types.StateConcurrency.ConcurrencyLastWrite => "last-write",
        _ => "",
    };

    // ---- output bindings ---------------------------------------------------------------------------

    internal async Task<Autogen.InvokeBindingResponse> InvokeBindingAsync(Autogen.InvokeBindingRequest request, CancellationToken cancellationToken)
    {
        var metadata = new Dictionary<string, string>(request.Metadata);
        var data = request.Data.ToByteArray();
        if (!_bindings.TryGetValue(request.Name, out var backend))
        {
            _bindingCalls.Enqueue(new BindingCall(request.Name, request.Operation, metadata, data, "no such binding"));
            throw new RpcException(new Status(StatusCode.Internal, $"error invoking output binding {request.Name}: couldn't find output binding {request.Name}"));
        }

        try
        {
            var response = await backend.InvokeAsync(request, cancellationToken);
            _bindingCalls.Enqueue(new BindingCall(request.Name, request.Operation, metadata, data, "ok"));
            return response;
        }
        catch (BindingFailedException e)
        {
            _bindingCalls.Enqueue(new BindingCall(request.Name, request.Operation, metadata, data, e.Message));
            throw new RpcException(new Status(StatusCode.Internal, $"error invoking output binding {request.Name}: {e.Message}"));
        }
    }

    // ---- secrets and pub/sub -------------------------------------------------------------------------

    internal Autogen.GetSecretResponse GetSecret(Autogen.GetSecretRequest request)
    {
        // A missing secret is an error from the local file and Kubernetes stores alike.
        if (!_secrets.TryGetValue((request.StoreName, request.Key), out var value))
        {
            throw new RpcException(new Status(StatusCode.Internal, $"failed getting secret with key {request.Key} from secret store {request.StoreName}: secret {request.Key} not found"));
        }

        return new Autogen.GetSecretResponse { Data = { [request.Key] = value } };
    }

    internal async Task<Google.Protobuf.WellKnownTypes.Empty> PublishEventAsync(Autogen.PublishEventRequest request)
    {
        _published.Enqueue(new PublishedEvent(request.PubsubName, request.Topic, request.DataContentType, request.Data.ToByteArray(), new Dictionary<string, string>(request.Metadata)));
        foreach (var subscriber in _subscribers)
        {
            await subscriber.DeliverAsync(request);
        }

        return new Google.Protobuf.WellKnownTypes.Empty();
    }

    /// <summary>
    /// Delivers what is published through this sidecar to a gRPC app's subscriptions too, as the pub/sub
    /// component and the subscriber's sidecar would: the app's <c>ListTopicSubscriptions</c>, then
    /// <c>OnTopicEvent</c> for each event on a subscribed topic. The app's answers are kept in order.
    /// </summary>
    public async Task AddGrpcSubscriberAsync(AppCallbackCaller app)
    {
        var subscriptions = await app.ListTopicSubscriptionsAsync(new Google.Protobuf.WellKnownTypes.Empty());
        _subscribers.Add(new Subscriber(app, [.. subscriptions.Subscriptions.Select(s => (s.PubsubName, s.Topic))], _deliveries));
    }

    /// <summary>Deliveries to subscribers: the topic, the event id and what the app answered.</summary>
    public IReadOnlyList<(string Topic, string EventId, string Status)> Deliveries => [.. _deliveries];

    private sealed record Subscriber(AppCallbackCaller App, HashSet<(string PubSub, string Topic)> Topics, ConcurrentQueue<(string Topic, string EventId, string Status)> Deliveries)
    {
        public async Task DeliverAsync(Autogen.PublishEventRequest request)
        {
            if (!Topics.Contains((request.PubsubName, request.Topic)))
            {
                return;
            }

            var id = request.Metadata.TryGetValue("cloudevent.id", out var given) ? given : Guid.NewGuid().ToString();
            var answer = await App.OnTopicEventAsync(new Dapr.AppCallback.Autogen.Grpc.v1.TopicEventRequest
            {
                Id = id,
                Source = "sidecar-double",
                Type = "com.dapr.event.sent",
                SpecVersion = "1.0",
                DataContentType = request.DataContentType,
                Data = request.Data,
                Topic = request.Topic,
                PubsubName = request.PubsubName,
            });
            Deliveries.Enqueue((request.Topic, id, answer.Status.ToString()));
        }
    }

    // ---- actors ------------------------------------------------------------------------------------

    /// <summary>
    /// An actor method call, forwarded to the app that hosts the type as <c>/actors/{type}/{id}/method/{method}</c>
    /// with the caller's headers and body, one call per actor at a time (turn-based concurrency is the
    /// sidecar's job, not the app's).
    /// </summary>
    private async Task InvokeActorAsync(HttpContext context, IHttpForwarder forwarder, string type, string id, string method)
    {
        if (!_actorHosts.TryGetValue(type, out var host))
        {
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await context.Response.WriteAsync($"actor type {type} is not hosted by any app");
            return;
        }

        var turn = _actorTurns.GetOrAdd((type, id), _ => new SemaphoreSlim(1, 1));
        await turn.WaitAsync(context.RequestAborted);
        try
        {
            var started = Clock.GetUtcNow();
            var target = new Uri(host, $"/actors/{type}/{Uri.EscapeDataString(id)}/method/{method}");
            await forwarder.SendAsync(context, host.ToString(), _forwardingClient,
                new ForwarderRequestConfig { Version = System.Net.HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact },
                new ActorPathTransformer(target));
            _actorCalls.Enqueue(new ActorCall(type, id, method, started, Clock.GetUtcNow()));
        }
        finally
        {
            turn.Release();
        }
    }

    private async Task<IResult> RegisterReminderAsync(HttpContext context, string type, string id, string name)
    {
        using var reader = new StreamReader(context.Request.Body);
        _reminders[(type, id, name)] = await reader.ReadToEndAsync(context.RequestAborted);
        return Results.NoContent();
    }

    private IResult GetActorState(string type, string id, string key)
    {
        lock (_stateLock)
        {
            return _actorState.TryGetValue((type, id, key), out var json)
                ? Results.Text(json, "application/json")
                : Results.NoContent();
        }
    }

    /// <summary>The actor SDK's state transaction: a JSON array of upsert and delete operations.</summary>
    private async Task<IResult> SaveActorStateAsync(HttpContext context, string type, string id)
    {
        using var body = await System.Text.Json.JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        lock (_stateLock)
        {
            foreach (var operation in body.RootElement.EnumerateArray())
            {
                var request = operation.GetProperty("request");
                var key = request.GetProperty("key").GetString()!;
                switch (operation.GetProperty("operation").GetString())
                {
                    case "upsert":
                        _actorState[(type, id, key)] = request.GetProperty("value").GetRawText();
                        break;
                    case "delete":
                        _actorState.Remove((type, id, key));
                        break;
                    default:
                        return Results.BadRequest($"unknown operation in {operation.GetRawText()}");
                }
            }
        }

        return Results.NoContent();
    }

    private sealed class ActorPathTransformer(Uri target) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await Default.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            proxyRequest.RequestUri = target;
        }
    }

    // ---- service invocation -------------------------------------------------------------------------

    /// <summary>
    /// gRPC service invocation as daprd does it: a call to the sidecar's gRPC port naming another app in its
    /// <c>dapr-app-id</c> metadata is forwarded, as it is, to that app. daprd proxies unary and streamed calls
    /// alike; so does the forwarder, which passes each message of a stream on as it comes, with the trailers
    /// at its end, and a caller's cancellation to the app.
    /// </summary>
    private async Task ProxyInvocationAsync(HttpContext context, IHttpForwarder forwarder)
    {
        var appId = context.Request.Headers["dapr-app-id"].ToString();
        var path = context.Request.Path.Value ?? "";
        if (appId.Length == 0 || !_apps.TryGetValue(appId, out var address))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        _invocations.Enqueue((appId, path));
        await forwarder.SendAsync(context, address.ToString(), _forwardingClient,
            new ForwarderRequestConfig { Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact });
    }

    private sealed record StoredState(byte[] Value, string Etag, DateTimeOffset? ExpiresAt);

    /// <summary>The gRPC service instance; its methods forward to the sidecar.</summary>
    public sealed class DaprService
    {
        internal SidecarDouble Sidecar { get; set; } = null!;
    }

    /// <summary>
    /// Binds the Dapr methods by hand: <c>Dapr.Protos</c> has no server base class, so each method gets a
    /// <see cref="Method{TRequest, TResponse}"/> built from the message parsers and the full service name.
    /// </summary>
    private sealed class DaprMethodProvider : IServiceMethodProvider<DaprService>
    {
        public void OnServiceMethodDiscovery(ServiceMethodProviderContext<DaprService> context)
        {
            Add(context, "GetState", Autogen.GetStateRequest.Parser, (s, r, _) => Task.FromResult(s.Sidecar.GetState(r)));
            Add(context, "GetBulkState", Autogen.GetBulkStateRequest.Parser, (s, r, _) => Task.FromResult(s.Sidecar.GetBulkState(r)));
            Add(context, "SaveState", Autogen.SaveStateRequest.Parser, (s, r, _) => s.Sidecar.SaveStateAsync(r));
            Add(context, "DeleteState", Autogen.DeleteStateRequest.Parser, (s, r, _) => Task.FromResult(s.Sidecar.DeleteState(r)));
            Add(context, "DeleteBulkState", Autogen.DeleteBulkStateRequest.Parser, (s, r, _) => Task.FromResult(s.Sidecar.DeleteBulkState(r)));
            Add(context, "ExecuteStateTransaction", Autogen.ExecuteStateTransactionRequest.Parser, (s, r, _) => s.Sidecar.ExecuteStateTransactionAsync(r));
            Add(context, "InvokeBinding", Autogen.InvokeBindingRequest.Parser, (s, r, c) => s.Sidecar.InvokeBindingAsync(r, c.CancellationToken));
            Add(context, "GetSecret", Autogen.GetSecretRequest.Parser, (s, r, _) => Task.FromResult(s.Sidecar.GetSecret(r)));
            Add(context, "PublishEvent", Autogen.PublishEventRequest.Parser, (s, r, _) => s.Sidecar.PublishEventAsync(r));
        }

        private static void Add<TRequest, TResponse>(
            ServiceMethodProviderContext<DaprService> context,
            string name,
            MessageParser<TRequest> parser,
            UnaryServerMethod<DaprService, TRequest, TResponse> handler)
            where TRequest : class, IMessage<TRequest>
            where TResponse : class, IMessage<TResponse>, new()
        {
            var method = new Method<TRequest, TResponse>(
                MethodType.Unary,
                ServiceName,
                name,
                Marshallers.Create(r => r.ToByteArray(), parser.ParseFrom),
                Marshallers.Create(r => r.ToByteArray(), new MessageParser<TResponse>(() => new TResponse()).ParseFrom));
            context.AddUnaryMethod(method, [], handler);
        }
    }
}
