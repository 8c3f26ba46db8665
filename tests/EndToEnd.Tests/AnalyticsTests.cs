using System.Text.Json.Nodes;
using Dapr.AppCallback.Autogen.Grpc.v1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PersistentAgents.Analytics;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Learning;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// The analytics sink against a real PostgreSQL: a PGlite server of its own for each test, so that each test
/// sees only its own rows.
/// </summary>
public sealed class AnalyticsTests : IAsyncLifetime
{
    private const string Tenant = "default";

    private readonly PgliteServer _postgres = new();

    /// <summary>Dapr.Protos has the AppCallback service base for apps but no client, so the sidecar's call is bound here.</summary>
    private static readonly Grpc.Core.Method<TopicEventRequest, TopicEventResponse> OnTopicEvent = new(
        Grpc.Core.MethodType.Unary, "dapr.proto.runtime.v1.AppCallback", "OnTopicEvent",
        Grpc.Core.Marshallers.Create(m => m.ToByteArray(), TopicEventRequest.Parser.ParseFrom),
        Grpc.Core.Marshallers.Create(m => m.ToByteArray(), TopicEventResponse.Parser.ParseFrom));

    public Task InitializeAsync() => _postgres.InitializeAsync();

    public Task DisposeAsync() => _postgres.DisposeAsync();

    [PgliteFact]
    public async Task Every_interaction_is_one_row_and_the_views_add_the_rows_up()
    {
        var connectionString = ConnectionString();
        // sim-best fails every call, so an interaction routed to it first falls back and records a failed attempt.
        var replies = new List<(string Agent, JsonObject Body)>();
        await using (var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(bestFailureRate: 1), "--Analytics:ConnectionString", connectionString))
        {
            foreach (var agent in new[] { "email-router", "summariser" })
            {
                foreach (var taskType in new[] { "email_routing", "summary" })
                {
                    for (var i = 0; i < 3; i++)
                    {
                        var (status, reply) = await host.CompleteAsync(agent, new { prompt = $"{taskType} request {i} for {agent}", taskType });
                        Assert.Equal(200, status);
                        replies.Add((agent, reply));
                    }
                }
            }
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();

        var rows = await QueryAsync(connection,
            "SELECT interaction_id, tenant, agent, task_type, provider, model, cost_usd, quality, success, attempts::text FROM analytics.interactions");
        Assert.Equal(replies.Count, rows.Count);
        var rowById = rows.ToDictionary(r => (string)r[0]);
        foreach (var (agent, reply) in replies)
        {
            var row = rowById[reply["interactionId"]!.GetValue<string>()];
            Assert.Equal(Tenant, row[1]);
            Assert.Equal(agent, row[2]);
            Assert.Equal(reply["taskType"]!.GetValue<string>(), row[3]);
            Assert.Equal(reply["provider"]!.GetValue<string>(), row[4]);
            Assert.Equal(reply["model"]!.GetValue<string>(), row[5]);
            Assert.Equal(Number(reply["costUsd"]), (double)row[6], 12);
            Assert.Equal(Number(reply["quality"]), (double)row[7], 12);
            Assert.True((bool)row[8]);
            // The attempts are the reply's fallback path, failed ones included, without the skipped ones.
            var expectedAttempts = reply["fallbackPath"]!.AsArray()
                .Where(a => a!["outcome"]!.GetValue<string>() is "succeeded" or "failed")
                .Select(a => (a!["provider"]!.GetValue<string>(), a["model"]!.GetValue<string>(), a["outcome"]!.GetValue<string>() == "succeeded"));
            var attempts = JsonNode.Parse((string)row[9])!.AsArray()
                .Select(a => (a!["provider"]!.GetValue<string>(), a["model"]!.GetValue<string>(), a["success"]!.GetValue<bool>()));
            Assert.Equal(expectedAttempts, attempts);
        }

        var trends = await QueryAsync(connection,
            "SELECT agent, task_type, interactions, success_rate, total_cost_usd, p50_latency_ms, p95_latency_ms FROM analytics.daily_trends WHERE tenant = 'default'");
        Assert.Equal(replies.Count, trends.Sum(t => (long)t[2]));
        Assert.Equal(4, trends.Select(t => ((string)t[0], (string)t[1])).Distinct().Count());
        Assert.All(trends, t => Assert.Equal(1.0, (double)t[3]));
        Assert.All(trends, t => Assert.True((double)t[5] <= (double)t[6]));
        Assert.Equal(replies.Sum(r => Number(r.Body["costUsd"])), trends.Sum(t => (double)t[4]), 12);

        var expectedCosts = replies
            .GroupBy(r => (r.Agent, Provider: r.Body["provider"]!.GetValue<string>(), Model: r.Body["model"]!.GetValue<string>()))
            .ToDictionary(g => g.Key, g => (Interactions: (long)g.Count(), Cost: g.Sum(r => Number(r.Body["costUsd"]))));
        var costs = await QueryAsync(connection,
            "SELECT agent, provider, model, interactions, total_cost_usd FROM analytics.cost_by_agent_provider WHERE tenant = 'default'");
        Assert.Equal(expectedCosts.Count, costs.Count);
        foreach (var cost in costs)
        {
            var expected = expectedCosts[((string)cost[0], (string)cost[1], (string)cost[2])];
            Assert.Equal(expected.Interactions, (long)cost[3]);
            Assert.Equal(expected.Cost, (double)cost[4], 12);
        }

        var comparison = await QueryAsync(connection,
            "SELECT agent, interactions, cost_per_interaction_usd, quality_per_dollar, quality_per_dollar_rank FROM analytics.agent_comparison WHERE tenant = 'default' ORDER BY quality_per_dollar_rank");
        Assert.Equal(["email-router", "summariser"], comparison.Select(c => (string)c[0]).Order(StringComparer.Ordinal));
        Assert.All(comparison, c => Assert.Equal(6L, (long)c[1]));
        Assert.Equal(1L, (long)comparison[0][4]);
        Assert.True((long)comparison[1][4] >= 1);
        Assert.True((double)comparison[0][3] >= (double)comparison[1][3]);
        foreach (var agent in comparison)
        {
            var ofAgent = replies.Where(r => r.Agent == (string)agent[0]).Select(r => r.Body).ToList();
            Assert.Equal(ofAgent.Average(r => Number(r["costUsd"])), (double)agent[2], 12);
            Assert.Equal(ofAgent.Sum(r => Number(r["quality"])) / ofAgent.Sum(r => Number(r["costUsd"])), (double)agent[3], 6);
        }
    }

    [PgliteFact]
    public async Task A_redelivered_outcome_stays_one_row_served_by_its_last_successful_attempt()
    {
        var connectionString = ConnectionString();
        var outcome = new InteractionCompleted
        {
            InteractionId = InteractionIds.New(DateTimeOffset.UtcNow),
            Tenant = Tenant,
            Agent = "email-router",
            TaskType = "email_routing",
            Success = true,
            Quality = 0.8,
            CostUsd = 0.002,
            LatencyMs = 120,
            TokensIn = 100,
            TokensOut = 50,
            At = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
            Chosen = new ArmRef { Provider = "sim-best", Model = "best" },
        };
        outcome.Attempts.Add(new AttemptOutcome { Arm = new ArmRef { Provider = "sim-best", Model = "best" }, Success = false });
        outcome.Attempts.Add(new AttemptOutcome { Arm = new ArmRef { Provider = "sim-fair", Model = "fair" }, Success = true });

        // Two sinks, as two learning replicas would be: each creates the schema, and each may get the event.
        await using (var sink = new PostgresAnalyticsSink(connectionString))
        {
            await sink.WriteAsync(outcome, CancellationToken.None);
            await sink.WriteAsync(outcome, CancellationToken.None);
        }

        await using (var otherSink = new PostgresAnalyticsSink(connectionString))
        {
            var changed = outcome.Clone();
            changed.CostUsd = 1;
            await otherSink.WriteAsync(changed, CancellationToken.None);

            var unserved = outcome.Clone();
            unserved.InteractionId = InteractionIds.New(DateTimeOffset.UtcNow.AddMilliseconds(1));
            unserved.Success = false;
            unserved.Attempts[1].Success = false;
            await otherSink.WriteAsync(unserved, CancellationToken.None);
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        var rows = await QueryAsync(connection,
            "SELECT interaction_id, provider, model, chosen_provider, chosen_model, success, cost_usd, context FROM analytics.interactions ORDER BY interaction_id");
        Assert.Equal(2, rows.Count);
        var served = rows[0];
        Assert.Equal(outcome.InteractionId, served[0]);
        Assert.Equal(["sim-fair", "fair", "sim-best", "best", true], served[1..6]);
        Assert.Equal(0.002, (double)served[6], 12);
        Assert.Equal("simple", served[7]);
        // Every attempt failed: no arm served it, and the routing decision is still there.
        Assert.Equal(["", "", "sim-best", "best", false], rows[1][1..6]);
    }

    [PgliteFact]
    public async Task The_learning_service_writes_each_outcome_it_learns_from_in_distributed_mode()
    {
        var connectionString = ConnectionString();
        // No sidecar: learning state in memory and its learning-updated events dropped, the app callback as Dapr calls it.
        var app = LearningServiceHost.Build(
            ["--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default", "Warning", "--Analytics:ConnectionString", connectionString],
            services => services
                .AddSingleton<ILearningStateStore>(new InMemoryLearningStateStore())
                .AddSingleton<IEventPublisher>(new DroppingEventPublisher()));
        await app.StartAsync();
        try
        {
            using var channel = GrpcChannel.ForAddress(app.ListeningAddresses().Single());
            var outcome = new InteractionCompleted
            {
                InteractionId = InteractionIds.New(DateTimeOffset.UtcNow),
                Tenant = "acme",
                Agent = "router",
                TaskType = "classify",
                Success = true,
                Quality = 0.9,
                CostUsd = 0.001,
                ReferenceCostUsd = 0.01,
                At = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
                Attempts = { new AttemptOutcome { Arm = new ArmRef { Provider = "sim-fair", Model = "fair" }, Success = true } },
            };
            var delivery = new TopicEventRequest
            {
                Id = outcome.InteractionId,
                Topic = Topics.InteractionCompleted,
                PubsubName = DaprComponents.PubSub,
                DataContentType = "application/json",
                Data = ByteString.CopyFromUtf8(JsonFormatter.Default.Format(outcome)),
            };

            // Delivered twice, as at-least-once delivery may: acknowledged both times, one row.
            var invoker = channel.CreateCallInvoker();
            for (var delivered = 0; delivered < 2; delivered++)
            {
                var response = await invoker.AsyncUnaryCall(OnTopicEvent, null, new Grpc.Core.CallOptions(), delivery);
                Assert.Equal(TopicEventResponse.Types.TopicEventResponseStatus.Success, response.Status);
            }

            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            var row = Assert.Single(await QueryAsync(connection, "SELECT interaction_id, tenant, agent, provider, model, cost_usd FROM analytics.interactions"));
            Assert.Equal([outcome.InteractionId, "acme", "router", "sim-fair", "fair"], row[..5]);
            Assert.Equal(0.001, (double)row[5], 12);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>
    /// A pool of one for the sink and for each reader: PGlite has one backend, and concurrent writes on several
    /// sockets could interleave their protocol messages on it.
    /// </summary>
    private string ConnectionString() =>
        new NpgsqlConnectionStringBuilder(_postgres.ConnectionString) { Pooling = true, MaxPoolSize = 1 }.ConnectionString;

    private static async Task<List<object[]>> QueryAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<object[]>();
        while (await reader.ReadAsync())
        {
            var row = new object[reader.FieldCount];
            reader.GetValues(row);
            rows.Add(row);
        }

        return rows;
    }
}

public sealed class AnalyticsWithoutPostgresTests
{
    [Fact]
    public async Task Without_a_connection_string_no_sink_is_registered_and_the_host_works()
    {
        var unset = new ConfigurationBuilder().Build();
        var empty = new ConfigurationBuilder().AddInMemoryCollection([new("Analytics:ConnectionString", "")]).Build();
        foreach (var configuration in new[] { unset, empty })
        {
            var services = new ServiceCollection();
            Assert.False(services.AddPostgresAnalytics(configuration));
            Assert.Empty(services);
        }

        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        var (status, reply) = await host.CompleteAsync("email-router", new { prompt = "Route this email", taskType = "email_routing" });
        Assert.Equal(200, status);
        Assert.Single(host.Episodes("email-router"), e => e["interactionId"]!.GetValue<string>() == reply["interactionId"]!.GetValue<string>());
    }
}

/// <summary>Stands in for the sidecar's pub/sub where nothing listens to what learning publishes.</summary>
internal sealed class DroppingEventPublisher : IEventPublisher
{
    public Task PublishAsync<TPayload>(string topic, string eventId, TPayload payload, CancellationToken cancellationToken)
        where TPayload : IMessage<TPayload> => Task.CompletedTask;
}
