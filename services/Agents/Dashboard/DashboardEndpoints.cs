using System.Diagnostics;
using System.Runtime.CompilerServices;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PersistentAgents.Agents.Dashboard;
using PersistentAgents.Contracts;

// In the agents' root namespace, which both hosts already import, so that mapping it takes one line.
namespace PersistentAgents.Agents;

/// <summary>
/// The operators' dashboard at <c>/dashboard</c>: a static page and uPlot, embedded in this assembly so
/// that the build needs no Node.js, and <c>/dashboard/events</c>, a server-sent-events stream of
/// <see cref="DashboardSnapshot"/>s.
/// </summary>
public static class DashboardEndpoints
{
    /// <summary>A snapshot at least this often, and at once after an interaction.</summary>
    public static readonly TimeSpan PushInterval = TimeSpan.FromSeconds(2);

    /// <summary>A burst of interactions is pushed as one snapshot, not one per interaction.</summary>
    private static readonly TimeSpan BurstGap = TimeSpan.FromMilliseconds(250);

    private static readonly (string Path, string Resource, string ContentType)[] Assets =
    [
        ("/dashboard", "dashboard/index.html", "text/html; charset=utf-8"),
        ("/dashboard/app.js", "dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/uplot.js", "dashboard/uplot.js", "text/javascript; charset=utf-8"),
        ("/dashboard/uplot.css", "dashboard/uplot.css", "text/css; charset=utf-8"),
    ];

    /// <summary>
    /// Call before <c>MapAgentsPublicApi</c>: the middleware that records completes for the agent list and
    /// the live feed must run ahead of the streamed-complete middleware, which answers without routing.
    /// </summary>
    public static WebApplication MapDashboard(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var activity = new RecentActivity();
        var time = app.Services.GetRequiredService<TimeProvider>();
        var snapshots = new DashboardSnapshots(
            activity,
            app.Services.GetRequiredService<IAgentInvoker>(),
            app.Services.GetRequiredService<IMemoryApi>(),
            app.Services.GetRequiredService<ILearningApi>(),
            app.Services.GetRequiredService<IGatewayApi>(),
            time);

        app.Use(async (context, next) =>
        {
            var agent = HttpMethods.IsPost(context.Request.Method) ? RecentActivity.AgentOfCompletePath(context.Request.Path.Value ?? "") : null;
            // Refused callers (no key) are no one's activity.
            var tenant = Tenancy.Of(context.User);
            if (agent is null || tenant is null)
            {
                await next(context);
                return;
            }

            var started = time.GetTimestamp();
            await next(context);
            // A stream answers 200 before it ends, so a stream that broke later is listed as a success.
            activity.Record(new FeedItem(time.GetUtcNow(), tenant, agent, context.Response.StatusCode,
                time.GetElapsedTime(started).TotalMilliseconds, context.Request.Query["stream"] == "true"));
        });

        foreach (var (path, resource, contentType) in Assets)
        {
            var content = ReadResource(resource);
            app.MapGet(path, () => Results.Bytes(content, contentType)).ExcludeFromDescription();
        }

        // The page and its scripts hold no data; the stream does, and only for an admin of the tenant shown.
        app.MapGet("/dashboard/events", (HttpContext context, string? agent, IHostApplicationLifetime lifetime, ILoggerFactory loggers) =>
        {
            // Ends with the host too, or an open dashboard would hold up its shutdown.
            var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
            context.Response.RegisterForDispose(ended);
            return TypedResults.ServerSentEvents(
                StreamAsync(snapshots, activity, Tenancy.Of(context.User)!, agent, loggers.CreateLogger(typeof(DashboardEndpoints)), ended.Token), "snapshot");
        }).RequireAuthorization(Tenancy.AdminPolicy).ExcludeFromDescription();
        return app;
    }

    private static async IAsyncEnumerable<DashboardSnapshot> StreamAsync(
        DashboardSnapshots snapshots, RecentActivity activity, string tenant, string? agent, ILogger logger, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var changed = activity.Changed;
            DashboardSnapshot? snapshot = null;
            try
            {
                snapshot = await snapshots.BuildAsync(tenant, agent, cancellationToken);
            }
            catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled)
            {
                // A service briefly unreachable (distributed mode): the next tick tries again.
                logger.LogWarning(e, "Dashboard snapshot failed");
            }

            if (snapshot is not null)
            {
                yield return snapshot;
            }

            await Task.Delay(BurstGap, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await Task.WhenAny(changed, Task.Delay(PushInterval, cancellationToken));
        }
    }

    private static byte[] ReadResource(string name)
    {
        using var stream = typeof(DashboardEndpoints).Assembly.GetManifestResourceStream(name)
            ?? throw new UnreachableException($"embedded resource {name} is missing from the build");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
