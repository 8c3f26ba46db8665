using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Analytics;

/// <summary>
/// Writes each finished interaction as one row of <c>analytics.interactions</c> in PostgreSQL, beside
/// views for daily trends, cost per agent and provider, and a comparison of agents. The schema is created
/// on the first write; a redelivered interaction is ignored by its id.
/// </summary>
public sealed class PostgresAnalyticsSink : IInteractionSink, IAsyncDisposable
{
    /// <summary>Idempotent, so every process may run it; the advisory lock keeps two first writers from racing on the catalog.</summary>
    private const string SchemaSql = """
        SELECT pg_advisory_xact_lock(hashtext('persistent-agents analytics schema'));

        CREATE SCHEMA IF NOT EXISTS analytics;

        CREATE TABLE IF NOT EXISTS analytics.interactions (
            interaction_id     text PRIMARY KEY,
            tenant             text NOT NULL,
            agent              text NOT NULL,
            task_type          text NOT NULL,
            context            text NOT NULL,
            provider           text NOT NULL,
            model              text NOT NULL,
            chosen_provider    text NOT NULL,
            chosen_model       text NOT NULL,
            success            boolean NOT NULL,
            quality            double precision NOT NULL,
            cost_usd           double precision NOT NULL,
            reference_cost_usd double precision NOT NULL,
            latency_ms         double precision NOT NULL,
            tokens_in          bigint NOT NULL,
            tokens_out         bigint NOT NULL,
            strategy           text NOT NULL,
            experiment         text NOT NULL,
            variant            text NOT NULL,
            cost_weight        double precision NOT NULL,
            at                 timestamptz NOT NULL,
            attempts           jsonb NOT NULL
        );

        CREATE INDEX IF NOT EXISTS interactions_tenant_agent_at ON analytics.interactions (tenant, agent, at);

        CREATE OR REPLACE VIEW analytics.daily_trends AS
        SELECT (at AT TIME ZONE 'UTC')::date AS day,
               tenant, agent, task_type,
               count(*) AS interactions,
               avg(success::int)::double precision AS success_rate,
               avg(quality) AS mean_quality,
               sum(cost_usd) AS total_cost_usd,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms
        FROM analytics.interactions
        GROUP BY 1, tenant, agent, task_type;

        CREATE OR REPLACE VIEW analytics.cost_by_agent_provider AS
        SELECT tenant, agent, provider, model,
               count(*) AS interactions,
               sum(cost_usd) AS total_cost_usd,
               avg(cost_usd) AS mean_cost_usd,
               avg(quality) AS mean_quality
        FROM analytics.interactions
        GROUP BY tenant, agent, provider, model;

        -- Quality per dollar is mean quality over mean cost; an agent that spent nothing has none and ranks last.
        CREATE OR REPLACE VIEW analytics.agent_comparison AS
        SELECT tenant, agent,
               count(*) AS interactions,
               avg(success::int)::double precision AS success_rate,
               avg(quality) AS mean_quality,
               avg(cost_usd) AS cost_per_interaction_usd,
               sum(quality) / nullif(sum(cost_usd), 0) AS quality_per_dollar,
               rank() OVER (PARTITION BY tenant ORDER BY sum(quality) / nullif(sum(cost_usd), 0) DESC NULLS LAST) AS quality_per_dollar_rank
        FROM analytics.interactions
        GROUP BY tenant, agent;
        """;

    private const string InsertSql = """
        INSERT INTO analytics.interactions (
            interaction_id, tenant, agent, task_type, context, provider, model, chosen_provider, chosen_model,
            success, quality, cost_usd, reference_cost_usd, latency_ms, tokens_in, tokens_out,
            strategy, experiment, variant, cost_weight, at, attempts)
        VALUES (
            @interaction_id, @tenant, @agent, @task_type, @context, @provider, @model, @chosen_provider, @chosen_model,
            @success, @quality, @cost_usd, @reference_cost_usd, @latency_ms, @tokens_in, @tokens_out,
            @strategy, @experiment, @variant, @cost_weight, @at, @attempts)
        ON CONFLICT (interaction_id) DO NOTHING
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly SemaphoreSlim _schemaGate = new(1, 1);
    private volatile bool _schemaReady;

    public PostgresAnalyticsSink(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
    }

    public async Task WriteAsync(InteractionCompleted outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        await EnsureSchemaAsync(cancellationToken);

        // The serving arm is the last attempt that succeeded; a failed interaction has none.
        var serving = outcome.Attempts.LastOrDefault(a => a.Success)?.Arm;
        await using var command = _dataSource.CreateCommand(InsertSql);
        var parameters = command.Parameters;
        parameters.AddWithValue("interaction_id", outcome.InteractionId);
        parameters.AddWithValue("tenant", outcome.Tenant);
        parameters.AddWithValue("agent", outcome.Agent);
        parameters.AddWithValue("task_type", outcome.TaskType);
        // An empty context is the "simple" bucket (events.proto), named so that the two group together.
        parameters.AddWithValue("context", outcome.Context.Length == 0 ? "simple" : outcome.Context);
        parameters.AddWithValue("provider", serving?.Provider ?? "");
        parameters.AddWithValue("model", serving?.Model ?? "");
        parameters.AddWithValue("chosen_provider", outcome.Chosen?.Provider ?? "");
        parameters.AddWithValue("chosen_model", outcome.Chosen?.Model ?? "");
        parameters.AddWithValue("success", outcome.Success);
        parameters.AddWithValue("quality", outcome.Quality);
        parameters.AddWithValue("cost_usd", outcome.CostUsd);
        parameters.AddWithValue("reference_cost_usd", outcome.ReferenceCostUsd);
        parameters.AddWithValue("latency_ms", outcome.LatencyMs);
        parameters.AddWithValue("tokens_in", outcome.TokensIn);
        parameters.AddWithValue("tokens_out", outcome.TokensOut);
        parameters.AddWithValue("strategy", outcome.Strategy);
        parameters.AddWithValue("experiment", outcome.Experiment);
        parameters.AddWithValue("variant", outcome.Variant);
        parameters.AddWithValue("cost_weight", outcome.CostWeight);
        parameters.AddWithValue("at", NpgsqlDbType.TimestampTz, TimeOf(outcome));
        parameters.AddWithValue("attempts", NpgsqlDbType.Jsonb, AttemptsJson(outcome));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        _schemaGate.Dispose();
    }

    private async Task EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        if (_schemaReady)
        {
            return;
        }

        await _schemaGate.WaitAsync(cancellationToken);
        try
        {
            if (_schemaReady)
            {
                return;
            }

            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using (var command = new NpgsqlCommand(SchemaSql, connection, transaction))
            {
                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
            _schemaReady = true;
        }
        finally
        {
            _schemaGate.Release();
        }
    }

    /// <summary>When the interaction finished: its <c>at</c>, or else the moment carried in its version 7 id.</summary>
    private static DateTime TimeOf(InteractionCompleted outcome) =>
        outcome.At is { } at ? at.ToDateTime()
        : InteractionIds.TryGetTimestamp(outcome.InteractionId, out var made) ? made.UtcDateTime
        : throw new ArgumentException($"interaction {outcome.InteractionId} has neither a time nor an interaction id that carries one", nameof(outcome));

    private static string AttemptsJson(InteractionCompleted outcome) =>
        new JsonArray([.. outcome.Attempts.Select(a => (JsonNode)new JsonObject
        {
            ["provider"] = a.Arm?.Provider ?? "",
            ["model"] = a.Arm?.Model ?? "",
            ["success"] = a.Success,
        })]).ToJsonString();
}
