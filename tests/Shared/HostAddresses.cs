using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace PersistentAgents.Tests.Shared;

internal static class HostAddresses
{
    /// <summary>Where a started host listens, in the order its endpoints were configured (port 0 resolved).</summary>
    public static IReadOnlyList<Uri> ListeningAddresses(this WebApplication app) =>
        [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a))];
}
