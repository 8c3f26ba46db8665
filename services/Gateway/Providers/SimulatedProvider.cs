using System.Text.Json;
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
    public void Override(double? failureRate, double? latencyMs, double? quality, double? midStreamFailureRate = null, SimulatedToolCalls? toolCalls = null)
    {
        CheckRange(failureRate, 0, 1, nameof(failureRate));
        CheckRange(latencyMs, 0, 600_000, nameof(latencyMs));
        CheckRange(quality, 0, 1, nameof(quality));
        CheckRange(midStreamFailureRate, 0, 1, nameof(midStreamFailureRate));
        Volatile.Write(ref _override, new SimulationOverride(failureRate, latencyMs, quality, midStreamFailureRate, toolCalls));
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
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        var behaviour = CurrentBehaviour(model, taskType);
        var latency = Jittered(behaviour.LatencyMs!.Value);
        if (latency > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(latency), cancellationToken);
        }

        ThrowIfFailing(model, behaviour);
        if (ToolCallFor(model, messages, options) is { } call)
        {
            return new ProviderCompletion("", InputTokens: null, OutputTokens: null, behaviour.Quality, ToolCalls: [call], FinishReason: ChatFinishReason.ToolCalls);
        }

        return new ProviderCompletion(ReplyText(model, taskType, messages, options), InputTokens: null, OutputTokens: null, behaviour.Quality, FinishReason: ChatFinishReason.Stop);
    }

    /// <summary>
    /// The reply word by word with the latency spread over the words. The failure rate applies before the first
    /// word; the mid-stream failure rate breaks the stream after at least one word, before the last chunk.
    /// </summary>
    public async IAsyncEnumerable<ProviderChunk> StreamAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ChatOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var behaviour = CurrentBehaviour(model, taskType);
        if (ToolCallFor(model, messages, options) is { } call)
        {
            var latency = Jittered(behaviour.LatencyMs!.Value);
            if (latency > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(latency), cancellationToken);
            }

            ThrowIfFailing(model, behaviour);
            yield return new ProviderChunk("", ToolCall: call);
            yield return new ProviderChunk("", ReportedQuality: behaviour.Quality, IsLast: true, FinishReason: ChatFinishReason.ToolCalls);
            yield break;
        }

        var words = ReplyText(model, taskType, messages, options).Split(' ');
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

        yield return new ProviderChunk("", ReportedQuality: behaviour.Quality, IsLast: true, FinishReason: ChatFinishReason.Stop);
    }

    private void ThrowIfFailing(ModelDefinition model, SimulationBehaviour behaviour)
    {
        if (Random.Shared.NextDouble() < behaviour.FailureRate!.Value)
        {
            throw new ProviderException($"simulated failure of {Name}/{model.Name}", retryable: true);
        }
    }

    /// <summary>
    /// The call a model with the "tools" capability makes, as a real one would: when the request declares tools,
    /// does not forbid calling them, and its last message is not already a tool's result. It calls the tool the
    /// choice names, or else the first one, with arguments shaped by the tool's schema.
    /// </summary>
    private FunctionCallContent? ToolCallFor(ModelDefinition model, IReadOnlyList<ChatMessage> messages, ChatOptions options)
    {
        var toolCalls = CurrentOverride.ToolCalls ?? model.Simulation?.ToolCalls ?? SimulatedToolCalls.Auto;
        if (toolCalls == SimulatedToolCalls.Never || !model.Has("tools") || options.Tools is not { Count: > 0 } tools
            || options.ToolMode is NoneChatToolMode || (messages.Count > 0 && messages[^1].Role == ChatRole.Tool))
        {
            return null;
        }

        var declared = tools.OfType<AIFunctionDeclaration>().ToList();
        var tool = options.ToolMode is RequiredChatToolMode { RequiredFunctionName: { } name }
            ? declared.FirstOrDefault(t => t.Name == name)
            : declared.FirstOrDefault();
        if (tool is null)
        {
            return null;
        }

        var arguments = SchemaSample.Of(tool.JsonSchema, ExcerptOf(messages)) as JsonObject ?? [];
        return new FunctionCallContent(
            $"call_{Guid.NewGuid():N}"[..29],
            tool.Name,
            arguments.ToDictionary(p => p.Key, p => (object?)JsonSerializer.SerializeToElement(p.Value)));
    }

    /// <summary>
    /// A reply that says what was handled, or what a tool answered when the last message is its result; asked for
    /// JSON, a model that declares the "json" capability answers a JSON object (shaped by the schema when one is
    /// given) and one that does not answers text anyway, as a real model without a JSON mode may.
    /// </summary>
    private string ReplyText(ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, ChatOptions options)
    {
        var prompt = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        var words = prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var excerpt = ExcerptOf(messages);
        if (options.ResponseFormat is ChatResponseFormatJson json && model.Has("json"))
        {
            return json.Schema is { } schema
                ? SchemaSample.Of(schema, excerpt)?.ToJsonString() ?? "null"
                : new JsonObject
                {
                    ["simulated"] = $"{Name}/{model.Name}",
                    ["taskType"] = taskType,
                    ["words"] = words.Length,
                    ["excerpt"] = excerpt,
                }.ToJsonString();
        }

        if (messages.Count > 0 && messages[^1].Contents.OfType<FunctionResultContent>().FirstOrDefault() is { } result)
        {
            return $"[simulated {Name}/{model.Name}] {taskType}: the tool call {result.CallId} answered \"{result.Result}\".";
        }

        return $"[simulated {Name}/{model.Name}] {taskType}: handled a {words.Length}-word request " +
               $"(\"{excerpt}{(words.Length > 12 ? " …" : "")}\") with {messages.Count - 1} lines of context.";
    }

    private static string ExcerptOf(IReadOnlyList<ChatMessage> messages)
    {
        var prompt = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        return string.Join(' ', prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Take(12));
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
public sealed record SimulationOverride(
    double? FailureRate, double? LatencyMs, double? Quality, double? MidStreamFailureRate = null, SimulatedToolCalls? ToolCalls = null)
{
    public static SimulationOverride None { get; } = new(null, null, null);

    public bool IsEmpty => FailureRate is null && LatencyMs is null && Quality is null && MidStreamFailureRate is null && ToolCalls is null;
}
