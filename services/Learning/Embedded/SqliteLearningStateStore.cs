using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Learning.Embedded;

/// <summary>The bandit's state in SQLite: posteriors and applied interaction ids, written in one transaction.</summary>
public sealed class SqliteLearningStateStore(SqliteDatabase database) : ILearningStateStore
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS arm_posteriors (
            tenant TEXT NOT NULL,
            agent TEXT NOT NULL,
            task_type TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prior_alpha REAL NOT NULL,
            prior_beta REAL NOT NULL,
            successes REAL NOT NULL,
            failures REAL NOT NULL,
            pulls INTEGER NOT NULL,
            PRIMARY KEY (tenant, agent, task_type, provider, model));
        CREATE TABLE IF NOT EXISTS applied_outcomes (
            interaction_id TEXT PRIMARY KEY);
        """;

    public Task<IReadOnlyDictionary<ArmKey, ArmPosterior>> LoadAllAsync(CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT tenant, agent, task_type, provider, model, prior_alpha, prior_beta, successes, failures, pulls FROM arm_posteriors";
        var posteriors = new Dictionary<ArmKey, ArmPosterior>();
        using var reader = query.ExecuteReader();
        while (reader.Read())
        {
            posteriors[new ArmKey(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4))] =
                new ArmPosterior(reader.GetDouble(5), reader.GetDouble(6), reader.GetDouble(7), reader.GetDouble(8), reader.GetInt64(9));
        }

        return Task.FromResult<IReadOnlyDictionary<ArmKey, ArmPosterior>>(posteriors);
    }

    public Task<bool> TryApplyAsync(string interactionId, IReadOnlyDictionary<ArmKey, ArmPosterior> changed, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        using (var mark = connection.CreateCommand())
        {
            mark.CommandText = "INSERT INTO applied_outcomes (interaction_id) VALUES ($id) ON CONFLICT DO NOTHING";
            mark.Parameters.AddWithValue("$id", interactionId);
            if (mark.ExecuteNonQuery() == 0)
            {
                return Task.FromResult(false);
            }
        }

        using var upsert = connection.CreateCommand();
        upsert.CommandText = """
            INSERT INTO arm_posteriors (tenant, agent, task_type, provider, model, prior_alpha, prior_beta, successes, failures, pulls)
            VALUES ($tenant, $agent, $task, $provider, $model, $prior_alpha, $prior_beta, $successes, $failures, $pulls)
            ON CONFLICT (tenant, agent, task_type, provider, model) DO UPDATE SET
                prior_alpha = excluded.prior_alpha, prior_beta = excluded.prior_beta,
                successes = excluded.successes, failures = excluded.failures, pulls = excluded.pulls
            """;
        foreach (var name in new[] { "$tenant", "$agent", "$task", "$provider", "$model", "$prior_alpha", "$prior_beta", "$successes", "$failures", "$pulls" })
        {
            upsert.Parameters.Add(new Microsoft.Data.Sqlite.SqliteParameter { ParameterName = name });
        }

        foreach (var (key, posterior) in changed)
        {
            object[] values = [key.Tenant, key.Agent, key.TaskType, key.Provider, key.Model, posterior.PriorAlpha, posterior.PriorBeta, posterior.Successes, posterior.Failures, posterior.Pulls];
            for (var i = 0; i < values.Length; i++)
            {
                upsert.Parameters[i].Value = values[i];
            }

            upsert.ExecuteNonQuery();
        }

        transaction.Commit();
        return Task.FromResult(true);
    }
}
