using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace PersistentAgents.ServiceHosting;

/// <summary>
/// Endpoints of a host that serves REST and gRPC to outside callers. REST and gRPC share <c>urls</c> when they
/// are https (ALPN picks the protocol). Kestrel cannot tell HTTP/1.1 from cleartext HTTP/2 on one port
/// (dotnet/aspnetcore#56984), so cleartext gRPC clients also get <c>grpcUrls</c>, HTTP/2 only.
/// </summary>
public static class KestrelEndpoints
{
    public static void Listen(WebApplicationBuilder builder, string urls, string grpcUrls)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var endpoints = Split(urls).Select(url => (Url: new Uri(url), Protocols: HttpProtocols.Http1AndHttp2))
            .Concat(Split(grpcUrls).Select(url => (Url: new Uri(url), Protocols: HttpProtocols.Http2)))
            .ToList();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var (url, protocols) in endpoints)
            {
                void Configure(ListenOptions listen)
                {
                    var https = url.Scheme == Uri.UriSchemeHttps;
                    listen.Protocols = https || protocols == HttpProtocols.Http2 ? protocols : HttpProtocols.Http1;
                    if (https)
                    {
                        listen.UseHttps();
                    }
                }

                switch (url.Host)
                {
                    case "localhost":
                        kestrel.ListenLocalhost(url.Port, Configure);
                        break;
                    case "*" or "+" or "0.0.0.0" or "[::]":
                        kestrel.ListenAnyIP(url.Port, Configure);
                        break;
                    default:
                        kestrel.Listen(IPAddress.Parse(url.Host.Trim('[', ']')), url.Port, Configure);
                        break;
                }
            }
        });
    }

    /// <summary>
    /// The <c>--urls</c> argument, taken out of <paramref name="args"/>: the web host would otherwise bind it
    /// too and then warn that the explicit endpoints override it.
    /// </summary>
    public static (string? Urls, string[] HostArgs) TakeUrls(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var urlsAt = Array.FindIndex(args, a => a == "--urls");
        var urls = urlsAt >= 0 && urlsAt + 1 < args.Length ? args[urlsAt + 1] : null;
        return (urls, urlsAt >= 0 ? [.. args[..urlsAt], .. args[Math.Min(args.Length, urlsAt + 2)..]] : args);
    }

    /// <summary>
    /// The first of <paramref name="urls"/> with another port: where a second endpoint of the same host listens
    /// (all interfaces when the first does).
    /// </summary>
    public static string BesidePort(string urls, int port) =>
        new UriBuilder(Split(urls)[0]) { Port = port }.Uri.GetLeftPart(UriPartial.Authority);

    // "+" and "*" (any address, in ASPNETCORE_URLS) are not host names a Uri accepts.
    private static string[] Split(string urls) =>
        [.. urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(url => url.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal))];
}
