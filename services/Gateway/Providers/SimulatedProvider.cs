using System.Text.Json.Nodes;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// A provider that answers with the latency, failure rate and quality its catalog entry declares per task
/// type. It makes demos, tests and benchmarks reproducible without an API key, and every reply it makes
/// is labelled simulated. Its behaviour can be overridden at run time for all its models (<see cref="Override"/>).
/// </summary>
public sealed class SimulatedProvider(string name) : IChatModelProvider
{
    private SimulationOverride _override = SimulationOverride.None;

    public string Name { get; } = name;

    public ProviderKind Kind => ProviderKind.Simulated;

    public bool Simulated => true;

    /// <summary>The run-time override in force; <see cref="SimulationOverride.None"/> when the catalog rules.</summary>
    public SimulationOverride CurrentOverride => Volatile.Read(ref _override);

    /// <summary>
    /// Overrides the behaviour of every model of this provider, for every task type, until the next call: a null
    /// value leaves that field to the catalog. Thread-safe; calls in flight keep the behaviour they started with.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range; the message names the field.</exception>
    public void Override(double? failureRate, double? latencyMs, double? quality, double? midStreamFailureRate = null)
    {
        CheckRange(failureRate, 0, 1, nameof(failureRate));
        CheckRange(latencyMs, 0, 600_000, nameof(latencyMs));
        CheckRange(quality, 0, 1, nameof(quality));
        CheckRange(midStreamFailureRate, 0, 1, nameof(midStreamFailureRate));
        Volatile.Write(ref _override, new SimulationOverride(failureRate, latencyMs, quality, midStreamFailureRate));
    }

    /// <summary>Back to the catalog's behaviour.</summary>
    public void ResetOverride() => Volatile.Write(ref _override, SimulationOverride.None);

    /// <summary>The behaviour a call of <paramref name="model"/> for <paramref name="taskType"/> gets now: catalog, then override.</summary>
    public SimulationBehaviour CurrentBehaviour(ModelDefinition model, string taskType)
    {
        ArgumentNullException.ThrowIfNull(model);
        var declared = (model.Simulation ?? new SimulationDefinition { Quality = model.Quality }).For(taskType);
        var current = CurrentOverride;
        return new SimulationBehaviour
        {
            Quality = current.Quality ?? declared.Quality,
            FailureRate = current.FailureRate ?? declared.FailureRate,
            LatencyMs = current.LatencyMs ?? declared.LatencyMs,
            MidStreamFailureRate = current.MidStreamFailureRate ?? declared.MidStreamFailureRate,
        };
    }

    public async Task<ProviderCompletion> CompleteAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ReplyFormat format, CancellationToken cancellationToken)
    {
        var behaviour = CurrentBehaviour(model, taskType);
        var latency = Jittered(behaviour.LatencyMs!.Value);
        if (latency > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(latency), cancellationToken);
        }

        ThrowIfFailing(model, behaviour);
        return new ProviderCompletion(ReplyText(model, taskType, messages, format), InputTokens: null, OutputTokens: null, behaviour.Quality);
    }

    /// <summary>
    /// The reply word by word with the latency spread over the words. The failure rate applies before the first
    /// word; the mid-stream failure rate breaks the stream after at least one word, before the last chunk.
    /// </summary>
    public async IAsyncEnumerable<ProviderChunk> StreamAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ReplyFormat format, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var behaviour = CurrentBehaviour(model, taskType);
        var words = ReplyText(model, taskType, messages, format).Split(' ');
        var perWord = Jittered(behaviour.LatencyMs!.Value) / words.Length;
        var failAfter = Random.Shared.NextDouble() < behaviour.MidStreamFailureRate!.Value
            ? 1 + Random.Shared.Next(words.Length)
            : -1;
        for (var i = 0; i < words.Length; i++)
        {
            if (perWord > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(perWord), cancellationToken);
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (i == 0)
            {
                ThrowIfFailing(model, behaviour);
            }

            yield return new ProviderChunk(i == 0 ? words[i] : " " + words[i]);
            if (i + 1 == failAfter)
            {
                throw new ProviderException($"simulated failure of {Name}/{model.Name} after {failAfter} words", retryable: true);
            }
        }

        yield return new ProviderChunk("", ReportedQuality: behaviour.Quality, IsLast: true);
    }

    private void ThrowIfFailing(ModelDefinition model, SimulationBehaviour behaviour)
    {
        if (Random.Shared.NextDouble() < behaviour.FailureRate!.Value)
        {
            throw new ProviderException($"simulated failure of {Name}/{model.Name}", retryable: true);
        }
    }

    /// <summary>
    /// A reply that says what was handled; asked for JSON, a model that declares the "json" capability answers
    /// a JSON object and one that does not answers text anyway, as a real model without a JSON mode may.
    /// </summary>
    private string ReplyText(ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ReplyFormat format)
    {
        var prompt = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        var words = prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var excerpt = string.Join(' ', words.Take(12));
        if (format == ReplyFormat.Json && model.Has("json"))
        {
            return new JsonObject
            {
                ["simulated"] = $"{Name}/{model.Name}",
                ["taskType"] = taskType,
                ["words"] = words.Length,
                ["excerpt"] = excerpt,
            }.ToJsonString();
        }

        return $"[simulated {Name}/{model.Name}] {taskType}: handled a {words.Length}-word request " +
               $"(\"{excerpt}{(words.Length > 12 ? " …" : "")}\") with {messages.Count - 1} lines of context.";
    }

    private static double Jittered(double latencyMs) => latencyMs * (0.8 + (0.4 * Random.Shared.NextDouble()));

    private static void CheckRange(double? value, double min, double max, string field)
    {
        if (value is { } v && (double.IsNaN(v) || v < min || v > max))
        {
            throw new ArgumentOutOfRangeException(field, v, $"{field}: must be between {min} and {max}");
        }
    }
}

/// <summary>A run-time override of a simulated provider's behaviour; a null field leaves the catalog's value.</summary>
public sealed record SimulationOverride(double? FailureRate, double? LatencyMs, double? Quality, double? MidStreamFailureRate = null)
{
    public static SimulationOverride None { get; } = new(null, null, null);

    public bool IsEmpty => FailureRate is null && LatencyMs is null && Quality is null && MidStreamFailureRate is null;
}
