using Grpc.Net.Client;
using AgentsClient = PersistentAgents.Contracts.V1.Agents.AgentsClient;

namespace PersistentAgents.Cli;

/// <summary>
/// The host a command talks to: the channel the app was given (tests pass one to an in-process host), else
/// a channel opened on first use to --host, $PAGENTS_HOST or the embedded host's default gRPC address.
/// </summary>
public sealed class HostConnection(GrpcChannel? given) : IDisposable
{
    public const string DefaultAddress = "http://localhost:5081";
    public const string AddressVariable = "PAGENTS_HOST";

    private GrpcChannel? _opened;

    /// <summary>Where the command connected to; empty before it did.</summary>
    public string Address { get; private set; } = "";

    public AgentsClient Connect(string? hostOption)
    {
        if (given is not null)
        {
            Address = given.Target;
            return new AgentsClient(given);
        }

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
        _opened ??= GrpcChannel.ForAddress(uri);
        return new AgentsClient(_opened);
    }

    public void Dispose() => _opened?.Dispose();
}
