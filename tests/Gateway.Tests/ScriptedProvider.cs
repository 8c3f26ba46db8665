using System.Runtime.CompilerServices;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace PersistentAgents.Gateway.Tests;

/// <summary>A provider whose every call follows the next step of a script; the last step repeats.</summary>
public sealed class ScriptedProvider(string name, params ScriptedProvider.ScriptStep[] script) : IChatModelProvider
{
    private int _calls;

    public string Name { get; } = name;

    public ProviderKind Kind => ProviderKind.Openai;

    public bool Simulated => false;

    public int Calls => Volatile.Read(ref _calls);

    public static ScriptStep Reply(string text = "the answer from the script", long? tokensIn = null, long? tokensOut = null) => new(text, null, null, tokensIn, tokensOut);

    public static ScriptStep Fail(bool retryable, TimeSpan? retryAfter = null) => new(null, new ProviderException("scripted failure", retryable, retryAfter: retryAfter), null);

    public static ScriptStep Hang() => new(null, null, Timeout.InfiniteTimeSpan);

    /// <summary>Streams some words, then breaks.</summary>
    public static ScriptStep BreakAfter(int words) => new(string.Join(' ', Enumerable.Repeat("word", words)), new ProviderException("cut mid-stream", retryable: true), null);

    public async Task<ProviderCompletion> CompleteAsync(ModelDefinition model, string taskType, IReadOnlyList<AiChatMessage> messages, ReplyFormat format, CancellationToken cancellationToken)
    {
        var step = Next();
        if (step.Delay is { } delay)
        {
            await Task.Delay(delay, cancellationToken);
        }

        return step.Failure is null
            ? new ProviderCompletion(step.Text!, step.TokensIn, step.TokensOut, ReportedQuality: null)
            : throw step.Failure;
    }

    public async IAsyncEnumerable<ProviderChunk> StreamAsync(
        ModelDefinition model, string taskType, IReadOnlyList<AiChatMessage> messages, ReplyFormat format, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var step = Next();
        if (step.Delay is { } delay)
        {
            await Task.Delay(delay, cancellationToken);
        }

        var words = step.Text?.Split(' ') ?? [];
        for (var i = 0; i < words.Length; i++)
        {
            yield return new ProviderChunk(i == 0 ? words[i] : " " + words[i]);
        }

        if (step.Failure is not null)
        {
            throw step.Failure;
        }

        yield return new ProviderChunk("", step.TokensIn, step.TokensOut, IsLast: true);
    }

    private ScriptStep Next()
    {
        var call = Interlocked.Increment(ref _calls) - 1;
        return script[Math.Min(call, script.Length - 1)];
    }

    public sealed record ScriptStep(string? Text, ProviderException? Failure, TimeSpan? Delay, long? TokensIn = null, long? TokensOut = null);
}
