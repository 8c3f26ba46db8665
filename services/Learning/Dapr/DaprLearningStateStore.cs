using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dapr;
using Dapr.Client;
using Google.Protobuf;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Dapr;

/// <summary>
/// The learning service's state on a Dapr state store (<see cref="DaprComponents.LearningState"/>).
/// <para>
/// One key per agent, <c>learning/{tenant}/{agent}</c>, holds a JSON document with the agent's arms,
/// experiments and variant tallies, the ids of its last <see cref="AppliedIdsPerAgent"/> applied outcomes
/// and how many selections it has recorded; the n-th selection (from 0) is under
/// <c>learning/{tenant}/{agent}/history/{n}</c>, and the last <c>historyPerAgent</c> of them are kept. The
/// key <c>learning/index</c> lists the agents. State grows by keys as agents are added, and loading it is a
/// read of the index and bulk reads of the agents' keys: no key scan or query, which most Dapr state stores
/// do not offer. Key parts are percent-escaped, so no name can produce another agent's key or contain
/// Dapr's <c>||</c> separator (which the sidecar refuses in keys).
/// </para>
/// <para>
/// The selections have keys of their own because one, with the scores of its group's arms, is about 1.4 KB
/// of JSON: 5,000 of them in the agent's document would make it 7 MB, beyond the 4 MB a sidecar's gRPC
/// messages carry by default, and rewritten on every outcome.
/// </para>
/// <para>
/// Every write is a read-modify-write under the ETags it read, with first-write concurrency (an empty ETag
/// creates a key only if it is still missing), retried when another replica wrote in between: an outcome
/// is applied once however many replicas receive it, and none is lost. An outcome with a selection writes
/// its agent's document, the new selection and the removal of the one that falls out of the history in
/// one state transaction, as does an update that touches several agents (the learning service sends none:
/// a provider's recovery forgives each agent's arms in an update of that agent's own, under its gate); one
/// that changes only its agent's document is a single conditional save.
/// </para>
/// </summary>
public sealed class DaprLearningStateStore : ILearningStateStore
{
    /// <summary>
    /// Outcome ids remembered per agent. Duplicates come from at-least-once redelivery (a pub/sub retry, a
    /// replica that stopped before acknowledging), which arrives within minutes of the first delivery; an
    /// agent handling ten outcomes a second still takes a quarter of an hour to push an id out.
    /// </summary>
    public const int AppliedIdsPerAgent = 10_000;

    public const string IndexKey = "learning/index";

    // Twenty replicas updating one agent at once all get through; a key that keeps changing beyond that is a fault.
    private const int MaxAttempts = 32;

    // Agents whose documents one bulk read returns: a response's size grows with the batch, not with the number of agents.
    private const int LoadBatch = 32;

    // Selections one bulk read of the history returns: about 140 KB.
    private const int HistoryBatch = 100;

    private static readonly StateOptions FirstWrite = new() { Concurrency = ConcurrencyMode.FirstWrite };

    private readonly DaprClient _dapr;
    private readonly int _historyPerAgent;
    private readonly string _storeName;

    // Agents known to be in the index. Entries are never removed from it, so once seen they need no reading again.
    private readonly ConcurrentDictionary<AgentId, bool> _indexed = new();

    public DaprLearningStateStore(DaprClient dapr, int historyPerAgent = 5_000, string storeName = DaprComponents.LearningState)
    {
        ArgumentNullException.ThrowIfNull(dapr);
        ArgumentOutOfRangeException.ThrowIfNegative(historyPerAgent);
        _dapr = dapr;
        _historyPerAgent = historyPerAgent;
        _storeName = storeName;
    }

    private static LearningStateJsonContext Json => LearningStateJsonContext.Default;

    public static string AgentKey(string tenant, string agent) => $"learning/{Escape(tenant)}/{Escape(agent)}";

    public static string SelectionKey(string tenant, string agent, long number) =>
        $"{AgentKey(tenant, agent)}/history/{number.ToString(CultureInfo.InvariantCulture)}";

    public async Task<LearningSnapshot> LoadAsync(CancellationToken cancellationToken)
    {
        var index = (await ReadAsync([IndexKey], Json.AgentIndex, cancellationToken))[0].Document;
        var agents = index.Agents.Distinct().ToList();
        var experiments = new List<Experiment>();
        var tallies = new Dictionary<VariantKey, VariantTally>();
        foreach (var batch in agents.Chunk(LoadBatch))
        {
            var documents = await ReadAsync([.. batch.Select(KeyOf)], Json.AgentDocument, cancellationToken);
            foreach (var ((tenant, agent), (document, _)) in batch.Zip(documents))
            {
                experiments.AddRange(document.Experiments);
                foreach (var tally in document.Tallies)
                {
                    tallies[new VariantKey(tenant, agent, tally.Experiment, tally.Variant)] = tally.Tally;
                }
            }
        }

        foreach (var agent in agents)
        {
            _indexed[agent] = true;
        }

        return new LearningSnapshot(experiments, tallies);
    }

    public async Task<IReadOnlyDictionary<ArmKey, ArmState>> LoadArmsAsync(string tenant, string agent, CancellationToken cancellationToken)
    {
        var document = (await ReadAsync([AgentKey(tenant, agent)], Json.AgentDocument, cancellationToken))[0].Document;
        return document.Arms.ToDictionary(arm => new ArmKey(tenant, agent, arm.TaskType, arm.Context, arm.Provider, arm.Model), arm => arm.State);
    }

    public Task<bool> TryApplyAsync(LearningUpdate update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);

        // The id is kept with the update's own agent: every delivery of an outcome names the same agent.
        var own = new AgentId(update.Tenant, update.Agent);
        var tallyAgent = update.Tally is { } tallied ? new AgentId(tallied.Key.Tenant, tallied.Key.Agent) : own;
        var agents = update.Arms.Keys.Select(k => new AgentId(k.Tenant, k.Agent)).Append(own).Append(tallyAgent).ToList();
        return UpdateAgentsAsync(agents, (documents, alongside) =>
        {
            var ownDocument = documents[own];
            if (ownDocument.AppliedIds.Contains(update.Id))
            {
                return (false, false);
            }

            ownDocument.AppliedIds.Add(update.Id);
            if (ownDocument.AppliedIds.Count > AppliedIdsPerAgent)
            {
                ownDocument.AppliedIds.RemoveRange(0, ownDocument.AppliedIds.Count - AppliedIdsPerAgent);
            }

            foreach (var (key, arm) in update.Arms)
            {
                documents[new AgentId(key.Tenant, key.Agent)].PutArm(key, arm);
            }

            if (update.Selection is { } selection && _historyPerAgent > 0)
            {
                // Written without an ETag: its number is taken under the ETag of the agent's document, so
                // only one writer ever commits it.
                var number = ownDocument.SelectionsRecorded++;
                alongside.Add(new StateTransactionRequest(
                    SelectionKey(own.Tenant, own.Agent, number), Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(selection)), StateOperationType.Upsert));
                if (number >= _historyPerAgent)
                {
                    alongside.Add(new StateTransactionRequest(SelectionKey(own.Tenant, own.Agent, number - _historyPerAgent), null, StateOperationType.Delete));
                }
            }

            if (update.Tally is { } tally)
            {
                documents[tallyAgent].PutTally(tally.Key, tally.Value);
            }

            return (true, true);
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<Selection>> HistoryAsync(string tenant, string agent, string taskType, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(taskType);
        var recorded = (await ReadAsync([AgentKey(tenant, agent)], Json.AgentDocument, cancellationToken))[0].Document.SelectionsRecorded;
        var kept = Math.Min(recorded, _historyPerAgent);
        var selections = new List<Selection>();
        for (var skipped = 0L; skipped < kept && selections.Count < limit; skipped += HistoryBatch)
        {
            var keys = Enumerable.Range(0, (int)Math.Min(HistoryBatch, kept - skipped))
                .Select(i => SelectionKey(tenant, agent, recorded - 1 - skipped - i))
                .ToList();
            var values = (await _dapr.GetBulkStateAsync(_storeName, keys, parallelism: null, cancellationToken: cancellationToken))
                .ToDictionary(item => item.Key, item => item.Value, StringComparer.Ordinal);
            selections.AddRange(keys
                .Select(key => values.GetValueOrDefault(key))
                .Where(value => !string.IsNullOrEmpty(value))
                .Select(value => ProtobufJson.Parser.Parse<Selection>(value))
                .Where(s => taskType.Length == 0 || s.TaskType == taskType));
        }

        return [.. selections.Take(limit)];
    }

    public Task PutExperimentAsync(Experiment experiment, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        var agent = new AgentId(experiment.Tenant, experiment.Agent);
        return UpdateAgentsAsync([agent], (documents, _) =>
        {
            var document = documents[agent];
            document.RemoveExperiment(experiment.Name);
            document.Experiments.Add(experiment);
            return (true, true);
        }, cancellationToken);
    }

    public Task<bool> DeleteExperimentAsync(string tenant, string agent, string name, CancellationToken cancellationToken)
    {
        var id = new AgentId(tenant, agent);
        return UpdateAgentsAsync([id], (documents, _) => documents[id].RemoveExperiment(name), cancellationToken);
    }

    /// <summary>
    /// Changes the documents of <paramref name="agents"/> and writes them back together, first listing any
    /// agent new to the index. <paramref name="change"/> may add operations to write alongside, and returns
    /// its result and whether to write at all.
    /// </summary>
    private Task<T> UpdateAgentsAsync<T>(
        IEnumerable<AgentId> agents,
        Func<IReadOnlyDictionary<AgentId, AgentDocument>, List<StateTransactionRequest>, (T Result, bool Write)> change,
        CancellationToken cancellationToken)
    {
        // In key order: stores that lock the keys of a transaction then always take them in one order.
        var ordered = agents.Distinct().OrderBy(KeyOf, StringComparer.Ordinal).ToList();
        return UpdateAsync(
            [.. ordered.Select(KeyOf)],
            Json.AgentDocument,
            (documents, alongside) => change(ordered.Zip(documents).ToDictionary(pair => pair.First, pair => pair.Second), alongside),
            token => IndexAsync(ordered, token),
            cancellationToken);
    }

    private async Task IndexAsync(IReadOnlyList<AgentId> agents, CancellationToken cancellationToken)
    {
        var unknown = agents.Where(a => !_indexed.ContainsKey(a)).ToList();
        if (unknown.Count == 0)
        {
            return;
        }

        await UpdateAsync([IndexKey], Json.AgentIndex, (documents, _) =>
        {
            var missing = unknown.Except(documents[0].Agents).ToList();
            documents[0].Agents.AddRange(missing);
            return (true, missing.Count > 0);
        }, _ => Task.CompletedTask, cancellationToken);
        foreach (var agent in unknown)
        {
            _indexed[agent] = true;
        }
    }

    /// <summary>
    /// Reads <paramref name="keys"/> with their ETags, lets <paramref name="change"/> edit the documents
    /// (an empty one for a missing key) and add operations on other keys, and writes it all: one document
    /// alone by a conditional save, anything more by one transaction, the documents under the ETags they
    /// were read with. Reads and changes again when another writer got in between.
    /// </summary>
    private async Task<T> UpdateAsync<TDocument, T>(
        IReadOnlyList<string> keys,
        JsonTypeInfo<TDocument> type,
        Func<IReadOnlyList<TDocument>, List<StateTransactionRequest>, (T Result, bool Write)> change,
        Func<CancellationToken, Task> beforeWrite,
        CancellationToken cancellationToken)
        where TDocument : new()
    {
        for (var attempt = 1; ; attempt++)
        {
            var read = await ReadAsync(keys, type, cancellationToken);
            var alongside = new List<StateTransactionRequest>();
            var (result, write) = change([.. read.Select(r => r.Document)], alongside);
            if (!write)
            {
                return result;
            }

            await beforeWrite(cancellationToken);
            if (await TryWriteAsync(keys, read, type, alongside, cancellationToken))
            {
                return result;
            }

            if (attempt >= MaxAttempts)
            {
                throw new InvalidOperationException($"Learning state under {string.Join(", ", keys)} kept changing under {MaxAttempts} attempts to update it");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 5 * attempt)), cancellationToken);
        }
    }

    /// <returns>False when another writer changed one of the documents since it was read.</returns>
    private async Task<bool> TryWriteAsync<TDocument>(
        IReadOnlyList<string> keys, IReadOnlyList<Stored<TDocument>> read, JsonTypeInfo<TDocument> type, List<StateTransactionRequest> alongside, CancellationToken cancellationToken)
        where TDocument : new()
    {
        try
        {
            if (keys.Count == 1 && alongside.Count == 0)
            {
                return await _dapr.TrySaveByteStateAsync(
                    _storeName, keys[0], JsonSerializer.SerializeToUtf8Bytes(read[0].Document, type), read[0].ETag, FirstWrite, cancellationToken: cancellationToken);
            }

            List<StateTransactionRequest> operations =
            [
                .. keys.Select((key, i) => new StateTransactionRequest(key, JsonSerializer.SerializeToUtf8Bytes(read[i].Document, type), StateOperationType.Upsert, read[i].ETag, options: FirstWrite)),
                .. alongside,
            ];
            await _dapr.ExecuteStateTransactionAsync(_storeName, operations, cancellationToken: cancellationToken);
            return true;
        }
        catch (DaprException)
        {
            // Stores report a lost race in a transaction, or on creating a key, in different ways (an ETag
            // mismatch or a plain failure): the ETags read again tell a race from a real failure.
            var now = await ReadAsync(keys, type, cancellationToken);
            if (now.Select(s => s.ETag).SequenceEqual(read.Select(s => s.ETag), StringComparer.Ordinal))
            {
                throw;
            }

            return false;
        }
    }

    /// <summary>The documents under <paramref name="keys"/>, in their order; an empty one with no ETag for a missing key.</summary>
    private async Task<IReadOnlyList<Stored<TDocument>>> ReadAsync<TDocument>(IReadOnlyList<string> keys, JsonTypeInfo<TDocument> type, CancellationToken cancellationToken)
        where TDocument : new()
    {
        var items = (await _dapr.GetBulkStateAsync(_storeName, keys, parallelism: null, cancellationToken: cancellationToken))
            .ToDictionary(item => item.Key, StringComparer.Ordinal);
        return
        [
            .. keys.Select(key => items.TryGetValue(key, out var item) && !string.IsNullOrEmpty(item.Value)
                ? new Stored<TDocument>(JsonSerializer.Deserialize(item.Value, type) ?? new TDocument(), item.ETag ?? "")
                : new Stored<TDocument>(new TDocument(), "")),
        ];
    }

    private static string KeyOf(AgentId agent) => AgentKey(agent.Tenant, agent.Agent);

    /// <summary>
    /// Percent-escapes everything but letters, digits and <c>-_.~</c>, so a part never contains the <c>/</c>
    /// that separates parts, and distinct names stay distinct.
    /// </summary>
    private static string Escape(string part) => Uri.EscapeDataString(part);

    private sealed record Stored<TDocument>(TDocument Document, string ETag);
}
