using Google.Protobuf;
using Microsoft.Data.Sqlite;
using PersistentAgents.Contracts.V1;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Learning.Embedded;

/// <summary>
/// The bandit's state in SQLite: arms, applied outcome ids, the selection history and experiments. One
/// outcome's arms, history row, tally and id are written in one transaction.
/// </summary>
public sealed class SqliteLearningStateStore(SqliteDatabase database, int historyPerAgent = 5_000) : ILearningStateStore
{
    // arm_posteriors held the first bandit's single utility posterior; its numbers mean nothing to this one.
    public const string Schema = """
        DROP TABLE IF EXISTS arm_posteriors;
        CREATE TABLE IF NOT EXISTS arms (
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            task_type TEXT NOT NULL,
            context TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prior_quality REAL NOT NULL,
            successes REAL NOT NULL,
            failures REAL NOT NULL,
            quality_count REAL NOT NULL,
            quality_sum REAL NOT NULL,
            quality_squares REAL NOT NULL,
            cost_sum REAL NOT NULL,
            pulls INTEGER NOT NULL,
            recent_success REAL NOT NULL,
            recent_quality REAL NOT NULL,
            recent_count INTEGER NOT NULL,
            resets INTEGER NOT NULL,
            idle INTEGER NOT NULL,
            consecutive_failures INTEGER NOT NULL,
            catalog_cost REAL NOT NULL,
            PRIMARY KEY (tenant, agent, task_type, context, provider, model));
        CREATE TABLE IF NOT EXISTS applied_outcomes (
            interaction_id TEXT PRIMARY KEY);
        CREATE TABLE IF NOT EXISTS selections (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            task_type TEXT NOT NULL,
            payload BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS selections_by_agent ON selections (tenant, agent, seq);
        CREATE TABLE IF NOT EXISTS experiments (
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            name TEXT NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (tenant, agent, name));
        CREATE TABLE IF NOT EXISTS variant_tallies (
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            experiment TEXT NOT NULL,
            variant TEXT NOT NULL,
            interactions INTEGER NOT NULL,
            successes INTEGER NOT NULL,
            quality_sum REAL NOT NULL,
            cost_sum REAL NOT NULL,
            metric_sum REAL NOT NULL,
            metric_squares REAL NOT NULL,
            PRIMARY KEY (tenant, agent, experiment, variant));
        """;

    public Task<LearningSnapshot> LoadAsync(CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        var experiments = ReadAll(connection, "SELECT payload FROM experiments ORDER BY rowid", reader => Experiment.Parser.ParseFrom((byte[])reader.GetValue(0)));
        var tallies = ReadAll(
            connection,
            "SELECT tenant, agent, experiment, variant, interactions, successes, quality_sum, cost_sum, metric_sum, metric_squares FROM variant_tallies",
            reader => KeyValuePair.Create(
                new VariantKey(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)),
                new VariantTally(reader.GetInt64(4), reader.GetInt64(5), reader.GetDouble(6), reader.GetDouble(7), reader.GetDouble(8), reader.GetDouble(9))));
        return Task.FromResult(new LearningSnapshot(experiments, new Dictionary<VariantKey, VariantTally>(tallies)));
    }

    public Task<IReadOnlyDictionary<ArmKey, ArmState>> LoadArmsAsync(string tenant, string agent, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        var arms = ReadAll(
            connection,
            "SELECT task_type, context, provider, model, prior_quality, successes, failures, quality_count, quality_sum, quality_squares, cost_sum, pulls, recent_success, recent_quality, recent_count, resets, idle, consecutive_failures, catalog_cost FROM arms WHERE tenant = $p0 AND agent = $p1",
            reader => KeyValuePair.Create(
                new ArmKey(tenant, agent, reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)),
                new ArmState(reader.GetDouble(4), reader.GetDouble(5), reader.GetDouble(6), reader.GetDouble(7), reader.GetDouble(8), reader.GetDouble(9), reader.GetDouble(10),
                    reader.GetInt64(11), reader.GetDouble(12), reader.GetDouble(13), reader.GetInt32(14), reader.GetInt32(15), reader.GetInt32(16), reader.GetInt32(17), reader.GetDouble(18))),
            tenant, agent);
        return Task.FromResult<IReadOnlyDictionary<ArmKey, ArmState>>(new Dictionary<ArmKey, ArmState>(arms));
    }

    public Task<bool> TryApplyAsync(LearningUpdate update, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        if (Execute(connection, "INSERT INTO applied_outcomes (interaction_id) VALUES ($p0) ON CONFLICT DO NOTHING", update.Id) == 0)
        {
            return Task.FromResult(false);
        }

        using (var upsert = connection.CreateCommand())
        {
            upsert.CommandText = """
                INSERT INTO arms (tenant, agent, task_type, context, provider, model, prior_quality, successes, failures, quality_count, quality_sum, quality_squares, cost_sum, pulls, recent_success, recent_quality, recent_count, resets, idle, consecutive_failures, catalog_cost)
                VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12, $p13, $p14, $p15, $p16, $p17, $p18, $p19, $p20)
                ON CONFLICT (tenant, agent, task_type, context, provider, model) DO UPDATE SET
                    prior_quality = excluded.prior_quality, successes = excluded.successes, failures = excluded.failures,
                    quality_count = excluded.quality_count, quality_sum = excluded.quality_sum, quality_squares = excluded.quality_squares, cost_sum = excluded.cost_sum,
                    pulls = excluded.pulls, recent_success = excluded.recent_success, recent_quality = excluded.recent_quality,
                    recent_count = excluded.recent_count, resets = excluded.resets, idle = excluded.idle, consecutive_failures = excluded.consecutive_failures, catalog_cost = excluded.catalog_cost
                """;
            for (var i = 0; i < 21; i++)
            {
                upsert.Parameters.Add(new SqliteParameter { ParameterName = $"$p{i}" });
            }

            foreach (var (key, arm) in update.Arms)
            {
                object[] values =
                [
                    key.Tenant, key.Agent, key.TaskType, key.Context, key.Provider, key.Model, arm.PriorQuality, arm.Successes, arm.Failures,
                    arm.QualityCount, arm.QualitySum, arm.QualitySquares, arm.CostSum, arm.Pulls, arm.RecentSuccess, arm.RecentQuality, arm.RecentCount, arm.Resets, arm.Idle, arm.ConsecutiveFailures, arm.CatalogCost,
                ];
                for (var i = 0; i < values.Length; i++)
                {
                    upsert.Parameters[i].Value = values[i];
                }

                upsert.ExecuteNonQuery();
            }
        }

        if (update.Selection is { } selection)
        {
            Execute(connection, "INSERT INTO selections (tenant, agent, task_type, payload) VALUES ($p0, $p1, $p2, $p3)",
                update.Tenant, update.Agent, selection.TaskType, selection.ToByteArray());
            Execute(connection, """
                DELETE FROM selections WHERE tenant = $p0 AND agent = $p1 AND seq <=
                    (SELECT seq FROM selections WHERE tenant = $p0 AND agent = $p1 ORDER BY seq DESC LIMIT 1 OFFSET $p2)
                """, update.Tenant, update.Agent, historyPerAgent);
        }

        if (update.Tally is { } tally)
        {
            var (key, value) = (tally.Key, tally.Value);
            Execute(connection, """
                INSERT INTO variant_tallies (tenant, agent, experiment, variant, interactions, successes, quality_sum, cost_sum, metric_sum, metric_squares)
                VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9)
                ON CONFLICT (tenant, agent, experiment, variant) DO UPDATE SET
                    interactions = excluded.interactions, successes = excluded.successes, quality_sum = excluded.quality_sum,
                    cost_sum = excluded.cost_sum, metric_sum = excluded.metric_sum, metric_squares = excluded.metric_squares
                """, key.Tenant, key.Agent, key.Experiment, key.Variant, value.Interactions, value.Successes, value.QualitySum, value.CostSum, value.MetricSum, value.MetricSquares);
        }

        transaction.Commit();
        return Task.FromResult(true);
    }

    public Task<IReadOnlyList<Selection>> HistoryAsync(string tenant, string agent, string taskType, int limit, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        var selections = ReadAll(
            connection,
            """
            SELECT payload FROM selections WHERE tenant = $p0 AND agent = $p1 AND ($p2 = '' OR task_type = $p2)
            ORDER BY seq DESC LIMIT $p3
            """,
            reader => Selection.Parser.ParseFrom((byte[])reader.GetValue(0)),
            tenant, agent, taskType, limit);
        return Task.FromResult<IReadOnlyList<Selection>>(selections);
    }

    public Task PutExperimentAsync(Experiment experiment, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        DeleteExperiment(connection, experiment.Tenant, experiment.Agent, experiment.Name);
        Execute(connection, "INSERT INTO experiments (tenant, agent, name, payload) VALUES ($p0, $p1, $p2, $p3)",
            experiment.Tenant, experiment.Agent, experiment.Name, experiment.ToByteArray());
        transaction.Commit();
        return Task.CompletedTask;
    }

    public Task<bool> DeleteExperimentAsync(string tenant, string agent, string name, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        var deleted = DeleteExperiment(connection, tenant, agent, name);
        transaction.Commit();
        return Task.FromResult(deleted);
    }

    private static bool DeleteExperiment(SqliteConnection connection, string tenant, string agent, string name)
    {
        Execute(connection, "DELETE FROM variant_tallies WHERE tenant = $p0 AND agent = $p1 AND experiment = $p2", tenant, agent, name);
        return Execute(connection, "DELETE FROM experiments WHERE tenant = $p0 AND agent = $p1 AND name = $p2", tenant, agent, name) > 0;
    }

    private static int Execute(SqliteConnection connection, string sql, params object[] values)
    {
        using var command = Command(connection, sql, values);
        return command.ExecuteNonQuery();
    }

    private static List<T> ReadAll<T>(SqliteConnection connection, string sql, Func<SqliteDataReader, T> row, params object[] values)
    {
        using var command = Command(connection, sql, values);
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(row(reader));
        }

        return rows;
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, object[] values)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters.AddWithValue($"$p{i}", values[i]);
        }

        return command;
    }
}
