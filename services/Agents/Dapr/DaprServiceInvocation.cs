using Grpc.Core;
using Grpc.Net.Client;

namespace PersistentAgents.Agents.Dapr;

/// <summary>
/// gRPC calls to another Dapr app through this app's own sidecar (docs/architecture.md, 'The two
/// compositions'): the call goes to the sidecar's gRPC port with the target's app id in the
/// <c>dapr-app-id</c> metadata, and the sidecar proxies it. Each call carries a deadline, and the caller's
/// cancellation (which fires when the caller's own deadline passes) flows with it.
/// </summary>
public sealed class DaprServiceInvocation : IDisposable
{
    private readonly TimeSpan _timeout;

    public DaprServiceInvocation(Uri sidecarGrpcEndpoint, TimeSpan timeout, string? apiToken = null)
    {
        _timeout = timeout;
        ApiToken = apiToken;
        Channel = GrpcChannel.ForAddress(sidecarGrpcEndpoint);
    }

    public GrpcChannel Channel { get; }

    private string? ApiToken { get; }

    /// <summary>The sidecar's gRPC endpoint from the standard Dapr variables: DAPR_GRPC_ENDPOINT, else DAPR_GRPC_PORT on localhost (50001).</summary>
    public static Uri SidecarEndpointFromEnvironment() =>
        Environment.GetEnvironmentVariable("DAPR_GRPC_ENDPOINT") is { Length: > 0 } endpoint
            ? new Uri(endpoint)
            : new Uri($"http://127.0.0.1:{(Environment.GetEnvironmentVariable("DAPR_GRPC_PORT") is { Length: > 0 } port ? port : "50001")}");

    public CallOptions To(string appId, CancellationToken cancellationToken)
    {
        var headers = new Metadata { { "dapr-app-id", appId } };
        if (ApiToken is { Length: > 0 } token)
        {
            headers.Add("dapr-api-token", token);
        }

        return new CallOptions(headers, DateTime.UtcNow + _timeout, cancellationToken);
    }

    /// <summary>
    /// The options of a server-streaming call: no deadline over the whole call, which lasts as long as the
    /// reply is being written; the caller bounds the wait for each message with <see cref="Timeout"/>.
    /// </summary>
    public CallOptions ToStream(string appId, CancellationToken cancellationToken) =>
        To(appId, cancellationToken).WithDeadline(DateTime.MaxValue);

    /// <summary>How long a call, or a streamed call's wait for its next message, may take.</summary>
    public TimeSpan Timeout => _timeout;

    public void Dispose() => Channel.Dispose();
}
