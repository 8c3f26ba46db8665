using PersistentAgents.Cli;
using PersistentAgents.Contracts.V1;
using Spectre.Console.Testing;
using AgentsClient = PersistentAgents.Contracts.V1.Agents.AgentsClient;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>One embedded host for every CLI test; each test talks to agents of its own.</summary>
public sealed class CliHostFixture : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>The pagents commands, run in-process against a running host over its cleartext gRPC port.</summary>
public sealed class CliTests(CliHostFixture fixture) : IClassFixture<CliHostFixture>
{
    private readonly AgentsClient _client = new(fixture.Host.Grpc);

    [Fact]
    public async Task Complete_prints_the_reply_and_where_it_came_from()
    {
        var (exitCode, output) = await RunAsync("complete", "cli-complete", "A customer disputes invoice 4471", "--task-type", "email_routing");

        Assert.Equal(0, exitCode);
        Assert.Contains("[simulated sim-", output, StringComparison.Ordinal);
        Assert.Contains("email_routing", output, StringComparison.Ordinal);
        Assert.Matches(@"Model\s+│ sim-(best/best|fair/fair|poor/poor)", output);
        Assert.Matches(@"Fallback path\s+│ sim-\w+/\w+ \(succeeded", output);
        Assert.Matches(@"Simulated\s+│ yes", output);
    }

    [Fact]
    public void The_reply_table_names_what_a_degraded_turn_went_without()
    {
        using var console = new TestConsole().Width(200);

        console.Write(ReplyTable.Of(new CompleteReply { Degraded = { "memory: recall unavailable (disk [1] gone)" } }));

        Assert.Matches(@"Degraded\s+│ memory: recall unavailable \(disk \[1\] gone\)", console.Output);
    }

    [Fact]
    public async Task Complete_streams_the_reply_then_its_table()
    {
        var (exitCode, output) = await RunAsync("complete", "cli-stream", "Stream the routing of this long email about invoices", "--stream");

        Assert.Equal(0, exitCode);
        Assert.Contains("[simulated sim-", output, StringComparison.Ordinal);
        Assert.Matches(@"Tokens\s+│ \d+ in, \d+ out", output);
    }

    [Fact]
    public async Task Stats_shows_totals_every_arm_of_the_agent_and_its_memory()
    {
        for (var i = 0; i < 6; i++)
        {
            await CompleteAsync("cli-stats", $"Route email number {i} about a late delivery", "email_routing");
        }

        var (exitCode, output) = await RunAsync("stats", "cli-stats");

        Assert.Equal(0, exitCode);
        var stats = await _client.GetStatsAsync(new GetStatsRequest { Agent = "cli-stats" });
        var arms = stats.TaskTypes.Single().Arms;
        Assert.NotEmpty(arms);
        Assert.All(arms, arm => Assert.Matches($@"│ {arm.Model}( ★)?\s+│\s+{arm.Interactions} │[^\n]*\n│ {arm.Provider}\s+│", output));
        Assert.Contains($"│ {stats.TaskTypes.Single().PreferredModel} ★", output, StringComparison.Ordinal);
        Assert.Matches(@"Interactions\s+│ 6 \(6 succeeded, 0 failed\)", output);
        Assert.Contains("email_routing", output, StringComparison.Ordinal);
        Assert.Matches(@"episodic\s+│\s+6 │", output);
    }

    [Fact]
    public async Task Health_shows_the_status_and_every_providers_circuit()
    {
        await CompleteAsync("cli-health", "Is everything up?");

        var (exitCode, output) = await RunAsync("health", "cli-health");

        Assert.Equal(0, exitCode);
        Assert.Contains("cli-health: ok", output, StringComparison.Ordinal);
        foreach (var provider in new[] { "sim-best", "sim-fair", "sim-poor" })
        {
            Assert.Matches($@"{provider}\s+│ closed\s+│ yes", output);
        }
    }

    [Fact]
    public async Task Feedback_is_recorded_once()
    {
        var reply = await CompleteAsync("cli-feedback", "Rate me afterwards");

        var (firstExitCode, first) = await RunAsync("feedback", "cli-feedback", reply.InteractionId, "0.4");
        var (secondExitCode, second) = await RunAsync("feedback", "cli-feedback", reply.InteractionId, "0.9");

        Assert.Equal(0, firstExitCode);
        Assert.Contains($"recorded: 0.40 for {reply.Provider}/{reply.Model} on interaction {reply.InteractionId}", first, StringComparison.Ordinal);
        Assert.Equal(0, secondExitCode);
        Assert.Contains($"already recorded: only the first feedback on interaction {reply.InteractionId} counts", second, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Memory_shows_working_memory_recall_and_episodes_then_purges_the_agent()
    {
        var first = await CompleteAsync("cli-memory", "Invoice 4471 is disputed by the customer", session: "s-42");
        var second = await CompleteAsync("cli-memory", "The customer calls again about invoice 4471", session: "s-42");

        var (workingExitCode, working) = await RunAsync("memory", "cli-memory", "working", "--session", "s-42");
        Assert.Equal(0, workingExitCode);
        Assert.Contains("Invoice 4471 is disputed by the customer", working, StringComparison.Ordinal);
        Assert.Contains(second.InteractionId, working, StringComparison.Ordinal);

        var (recallExitCode, recall) = await RunAsync("memory", "cli-memory", "recall", "invoice 4471 disputed");
        Assert.Equal(0, recallExitCode);
        Assert.Contains(first.InteractionId, recall, StringComparison.Ordinal);

        var (episodesExitCode, episodes) = await RunAsync("memory", "cli-memory", "episodes", "--limit", "10");
        Assert.Equal(0, episodesExitCode);
        Assert.Contains(first.InteractionId, episodes, StringComparison.Ordinal);
        Assert.Contains(second.InteractionId, episodes, StringComparison.Ordinal);

        var (episodeExitCode, episode) = await RunAsync("memory", "cli-memory", "episode", first.InteractionId);
        Assert.Equal(0, episodeExitCode);
        Assert.Contains($"\"interactionId\": \"{first.InteractionId}\"", episode, StringComparison.Ordinal);

        var (unconfirmedExitCode, unconfirmed) = await RunAsync("memory", "cli-memory", "purge");
        Assert.Equal(CliApp.UsageError, unconfirmedExitCode);
        Assert.Contains("error: --yes:", unconfirmed, StringComparison.Ordinal);

        var (purgeExitCode, purge) = await RunAsync("memory", "cli-memory", "purge", "--yes");
        Assert.Equal(0, purgeExitCode);
        Assert.Contains("purged cli-memory: 2 working turns, 2 semantic memories, 2 episodes", purge, StringComparison.Ordinal);
        Assert.Equal(CliApp.UsageError, (await RunAsync("stats", "cli-memory")).ExitCode);
    }

    [Fact]
    public async Task Simulate_drives_the_agent_with_a_progress_bar_then_prints_what_it_learned()
    {
        // A terminal: the live progress bar rather than the milestones printed when the output is piped.
        using var terminal = new TestConsole().Width(200).Interactive().SupportsAnsi(true);
        var exitCode = await CliApp.RunAsync(["simulate", "cli-simulate", "--count", "30", "--task-types", "email_routing,legal_triage"], terminal, fixture.Host.Grpc);
        var output = terminal.Output;

        Assert.Equal(0, exitCode);
        Assert.Matches("Simulating 30 completes against cli-simulate ━+ 100%", output);
        Assert.Contains("30 completes in", output, StringComparison.Ordinal);
        Assert.Contains("30 succeeded, 0 failed", output, StringComparison.Ordinal);
        Assert.Contains("email_routing: what cli-simulate learned from 15 decisions", output, StringComparison.Ordinal);
        Assert.Contains("legal_triage: what cli-simulate learned from 15 decisions", output, StringComparison.Ordinal);
        Assert.Matches(@"│ (best|fair|poor)( ★)?\s+│\s+\d+% │\s+\d+% │\s+\d\.\d\d │", output);
        var stats = await _client.GetStatsAsync(new GetStatsRequest { Agent = "cli-simulate" });
        Assert.Equal(30, stats.TotalInteractions);
    }

    [Fact]
    public async Task Bad_input_is_one_red_line_and_exit_code_2()
    {
        var (emptyPromptExitCode, emptyPrompt) = await RunAsync("complete", "cli-bad", "");
        Assert.Equal(CliApp.UsageError, emptyPromptExitCode);
        Assert.Equal("error: prompt: must not be empty", emptyPrompt.Trim());

        var (unknownAgentExitCode, unknownAgent) = await RunAsync("stats", "cli-nobody");
        Assert.Equal(CliApp.UsageError, unknownAgentExitCode);
        Assert.Equal("error: agent: 'cli-nobody' has no interactions yet", unknownAgent.Trim());

        var (badScoreExitCode, badScore) = await RunAsync("feedback", "cli-bad", "some-interaction", "1.5");
        Assert.Equal(CliApp.UsageError, badScoreExitCode);
        Assert.StartsWith("error: score:", badScore, StringComparison.Ordinal);

        var (unparsedExitCode, unparsed) = await RunAsync("simulate", "cli-bad", "--count", "0");
        Assert.Equal(CliApp.UsageError, unparsedExitCode);
        Assert.StartsWith("error: --count:", unparsed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_host_is_one_red_line_and_exit_code_1()
    {
        using var console = new TestConsole().Width(200);

        var exitCode = await CliApp.RunAsync(["--host", "http://127.0.0.1:1", "stats", "cli-anyone"], console);

        Assert.Equal(CliApp.Failure, exitCode);
        Assert.StartsWith("error: cannot reach http://127.0.0.1:1:", console.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", console.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_are_created_used_listed_and_revoked_from_the_command_line()
    {
        const string adminKey = "cli-admin-key-0123456789";
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Auth:Mode", "keys", "--Auth:AdminKey", adminKey);

        var (created, createdOutput) = await RunAsync(host, "keys", "create", "acme", "--name", "cli test", "--api-key", adminKey);
        Assert.Equal(0, created);
        var key = Assert.Single(createdOutput.Split('\n'), line => line.StartsWith("pa_", StringComparison.Ordinal)).Trim();
        var id = createdOutput.Split(':')[0].Trim();

        Assert.Equal(0, (await RunAsync(host, "--api-key", key, "complete", "cli-tenant", "Route invoice 12")).ExitCode);
        var (refused, refusal) = await RunAsync(host, "stats", "cli-tenant");
        Assert.Equal(CliApp.Failure, refused);
        Assert.Contains("error: authorization:", refusal, StringComparison.Ordinal);

        var (listed, listing) = await RunAsync(host, "keys", "list", "--tenant", "acme", "--api-key", adminKey);
        Assert.Equal(0, listed);
        Assert.Contains(id, listing, StringComparison.Ordinal);
        Assert.DoesNotContain(key, listing, StringComparison.Ordinal);

        Assert.Equal(0, (await RunAsync(host, "keys", "revoke", id, "--api-key", adminKey)).ExitCode);
        var (afterRevoke, revokedOutput) = await RunAsync(host, "stats", "cli-tenant", "--api-key", key);
        Assert.Equal(CliApp.Failure, afterRevoke);
        Assert.Contains("revoked", revokedOutput, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Output)> RunAsync(params string[] args) => RunAsync(fixture.Host, args);

    private static async Task<(int ExitCode, string Output)> RunAsync(TestHost host, params string[] args)
    {
        using var console = new TestConsole().Width(200);
        var exitCode = await CliApp.RunAsync(args, console, host.Grpc);
        return (exitCode, console.Output);
    }

    private async Task<CompleteReply> CompleteAsync(string agent, string prompt, string taskType = "", string session = "") =>
        await _client.CompleteAsync(new CompleteRequest { Agent = agent, Prompt = prompt, TaskType = taskType, SessionId = session });
}
