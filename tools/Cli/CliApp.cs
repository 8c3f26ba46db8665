using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using PersistentAgents.Cli.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli;

/// <summary>
/// pagents: parses the command line, runs one command against a host's public gRPC API
/// (persistent_agents.v1.Agents) and turns every failure into one red line and an exit code, never a
/// stack trace.
/// </summary>
public static class CliApp
{
    /// <summary>Exit code of anything that failed but for the reasons below.</summary>
    public const int Failure = 1;

    /// <summary>Exit code of a request the host refused as malformed or about something that does not exist, and of a command line that does not parse.</summary>
    public const int UsageError = 2;

    /// <param name="args">The command line, without the program's name.</param>
    /// <param name="console">Where tables, replies and progress go.</param>
    /// <param name="channel">The host to talk to; null: a channel to --host, $PAGENTS_HOST or http://localhost:5081, opened and closed here.</param>
    /// <param name="errors">Where the error line goes; null: <paramref name="console"/>.</param>
    public static async Task<int> RunAsync(
        string[] args, IAnsiConsole console, GrpcChannel? channel = null, IAnsiConsole? errors = null, CancellationToken cancellationToken = default)
    {
        using var host = new HostConnection(channel);
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("pagents");
            config.SetApplicationCulture(CultureInfo.InvariantCulture);
            config.ConfigureConsole(console);
            config.Settings.Registrar.RegisterInstance(host);
            config.Settings.Registrar.RegisterInstance(console);
            config.SetExceptionHandler((exception, _) => Report(errors ?? console, host, exception));

            config.AddCommand<CompleteCommand>("complete")
                .WithDescription("Complete a prompt: the reply, then its model, tokens, cost, latency, quality and fallback path")
                .WithExample("complete", "email-router", "\"A customer disputes invoice 4471\"", "--task-type", "email_routing")
                .WithExample("complete", "email-router", "\"Route this email\"", "--stream");
            config.AddCommand<StatsCommand>("stats")
                .WithDescription("Totals, per task type and arm what the agent learned, and its memory usage")
                .WithExample("stats", "email-router");
            config.AddCommand<HealthCommand>("health")
                .WithDescription("The agent's status and every provider's circuit")
                .WithExample("health", "email-router");
            config.AddCommand<FeedbackCommand>("feedback")
                .WithDescription("Rate a reply from 0 to 1; only the first rating of an interaction counts")
                .WithExample("feedback", "email-router", "01a212daea617bf19964e2fb3aaee889", "0.4");
            config.AddBranch<AgentSettings>("memory", memory =>
            {
                memory.SetDescription("Inspect or purge the agent's memory tiers");
                memory.AddCommand<WorkingMemoryCommand>("working")
                    .WithDescription("A session's recent turns")
                    .WithExample("memory", "email-router", "working", "--session", "s-42");
                memory.AddCommand<RecallCommand>("recall")
                    .WithDescription("What the agent would recall for a prompt like the query")
                    .WithExample("memory", "email-router", "recall", "\"invoice 4471\"");
                memory.AddCommand<EpisodesCommand>("episodes")
                    .WithDescription("The interactions recorded whole, by day")
                    .WithExample("memory", "email-router", "episodes", "--from", "2026-11-01", "--limit", "20");
                memory.AddCommand<EpisodeCommand>("episode")
                    .WithDescription("One interaction as it was recorded, as JSON")
                    .WithExample("memory", "email-router", "episode", "01a212daea617bf19964e2fb3aaee889");
                memory.AddCommand<PurgeCommand>("purge")
                    .WithDescription("Forget the agent: every memory tier and its statistics")
                    .WithExample("memory", "email-router", "purge", "--yes");
            });
            config.AddCommand<SimulateCommand>("simulate")
                .WithDescription("Drive a workload against the agent with a progress bar, then show what it learned")
                .WithExample("simulate", "email-router", "--count", "200", "--task-types", "email_routing,legal_triage");
            config.AddBranch<HostSettings>("keys", keys =>
            {
                keys.SetDescription("Manage API keys (needs a key with the admin scope when the host requires keys)");
                keys.AddCommand<CreateKeyCommand>("create")
                    .WithDescription("Create a key for a tenant and show its secret once")
                    .WithExample("keys", "create", "acme", "--name", "ci", "--requests-per-minute", "120");
                keys.AddCommand<ListKeysCommand>("list")
                    .WithDescription("Every key: id, tenant, scope, prefix, limit, created, revoked")
                    .WithExample("keys", "list", "--tenant", "acme");
                keys.AddCommand<RevokeKeyCommand>("revoke")
                    .WithDescription("Revoke a key; it is refused from the next request on")
                    .WithExample("keys", "revoke", "3f9a1c0d2b4e6f70");
            });
        });
        return await app.RunAsync(WithHostAfterCommand(args), cancellationToken);
    }

    /// <summary>
    /// --host and --api-key are global, but Spectre.Console.Cli takes a command's options only after the
    /// command: leading ones move to the end, so that `pagents --host URL stats agent` works too.
    /// </summary>
    private static string[] WithHostAfterCommand(string[] args) => args switch
    {
        [("--host" or "--api-key") and var option, var value, .. var rest] => [.. WithHostAfterCommand(rest), option, value],
        [var option, .. var rest] when option.StartsWith("--host=", StringComparison.Ordinal) || option.StartsWith("--api-key=", StringComparison.Ordinal) =>
            [.. WithHostAfterCommand(rest), option],
        _ => args,
    };

    private static int Report(IAnsiConsole errors, HostConnection host, Exception exception)
    {
        var (message, exitCode) = exception switch
        {
            // The client could not reach the host at all: where it tried is the useful part.
            RpcException { StatusCode: StatusCode.Unavailable, Status.DebugException: { } cause } =>
                ($"cannot reach {host.Address}: {cause.Message}", Failure),
            RpcException { StatusCode: StatusCode.Cancelled } or OperationCanceledException => ("cancelled", Failure),
            RpcException rpc => (
                rpc.Status.Detail.Length > 0 ? rpc.Status.Detail : rpc.StatusCode.ToString(),
                rpc.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound ? UsageError : Failure),
            UsageException or CommandAppException => (exception.Message, UsageError),
            _ => (exception.Message, Failure),
        };
        errors.MarkupLineInterpolated($"[red]error: {message}[/]");
        return exitCode;
    }
}
