using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using AgentsClient = PersistentAgents.Contracts.V1.Agents.AgentsClient;
using ApiKeysClient = PersistentAgents.Contracts.V1.ApiKeys.ApiKeysClient;

namespace PersistentAgents.Cli;

/// <summary>
/// The host a command talks to: the channel the app was given (tests pass one to an in-process host), else
/// a channel opened on first use to --host, $PAGENTS_HOST or the embedded host's default gRPC address; every
/// call carries the key from --api-key or $PAGENTS_API_KEY when there is one.
/// </summary>
public sealed class HostConnection(GrpcChannel? given) : IDisposable
{
    public const string DefaultAddress = "http://localhost:5081";
    public const string AddressVariable = "PAGENTS_HOST";
    public const string ApiKeyVariable = "PAGENTS_API_KEY";

    private GrpcChannel? _opened;

    /// <summary>Where the command connected to; empty before it did.</summary>
    public string Address { get; private set; } = "";

    public AgentsClient Agents(HostSettings settings) => new(Connect(settings));

    public ApiKeysClient ApiKeys(HostSettings settings) => new(Connect(settings));

    private CallInvoker Connect(HostSettings settings)
    {
        GrpcChannel channel;
        if (given is not null)
        {
            channel = given;
            Address = given.Target;
        }
        else
        {
            channel = Open(settings.Host);
        }

        var apiKey = settings.ApiKey is { Length: > 0 } option ? option : Environment.GetEnvironmentVariable(ApiKeyVariable);
        return string.IsNullOrEmpty(apiKey)
            ? channel.CreateCallInvoker()
            : channel.Intercept(headers =>
            {
                headers.Add("authorization", $"Bearer {apiKey}");
                return headers;
            });
    }

    private GrpcChannel Open(string? hostOption)
    {
        var (address, source) = hostOption is { Length: > 0 }
            ? (hostOption, "--host")
            : Environment.GetEnvironmentVariable(AddressVariable) is { Length: > 0 } fromEnvironment
                ? (fromEnvironment, AddressVariable)
                : (DefaultAddress, "the default host");
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"{source}: '{address}' is not an http:// or https:// address");
        }

        Address = address;
        return _opened ??= GrpcChannel.ForAddress(uri);
    }

    public void Dispose() => _opened?.Dispose();
}
