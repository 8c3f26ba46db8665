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

    /// <summary>A pause before each streamed word.</summary>
    public TimeSpan WordDelay { get; init; }

    /// <summary>The options and conversation of the last call, as the gateway handed them over.</summary>
    public Microsoft.Extensions.AI.ChatOptions? LastOptions { get; private set; }

    public IReadOnlyList<AiChatMessage>? LastMessages { get; private set; }

    public static ScriptStep Reply(string text = "the answer from the script", long? tokensIn = null, long? tokensOut = null) => new(text, null, null, tokensIn, tokensOut);

    public static ScriptStep Fail(bool retryable, TimeSpan? retryAfter = null) => new(null, new ProviderException("scripted failure", retryable, retryAfter: retryAfter), null);

    public static ScriptStep Hang() => new(null, null, Timeout.InfiniteTimeSpan);

    /// <summary>Streams some words, then breaks.</summary>
    public static ScriptStep BreakAfter(int words) => new(string.Join(' ', Enumerable.Repeat("word", words)), new ProviderException("cut mid-stream", retryable: true), null);

    /// <summary>Streams some words, then sends nothing more until cancelled.</summary>
    public static ScriptStep StallAfter(int words) => new(string.Join(' ', Enumerable.Repeat("word", words)), null, null) { StallAtEnd = true };

    /// <summary>Refuses the request as a provider answers it: a refusal of the caller's request, or of its length.</summary>
    public static ScriptStep Refuse(ProviderFailure failure, string code) => new(null, new ProviderException($"refused ({code})", failure)
    {
        Refusal = new ProviderRefusal(400, "invalid_request_error", code, $"the provider's words about {code}", "messages"),
    }, null);

    public async Task<ProviderCompletion> CompleteAsync(ModelDefinition model, string taskType, IReadOnlyList<AiChatMessage> messages, Microsoft.Extensions.AI.ChatOptions options, CancellationToken cancellationToken)
    {
        var step = Next(messages, options);
        if (step.Delay is { } delay)
        {
            await Task.Delay(delay, cancellationToken);
        }

        return step.Failure is null
            ? new ProviderCompletion(step.Text!, step.TokensIn, step.TokensOut, ReportedQuality: null)
            : throw step.Failure;
    }

    public async IAsyncEnumerable<ProviderChunk> StreamAsync(
        ModelDefinition model, string taskType, IReadOnlyList<AiChatMessage> messages, Microsoft.Extensions.AI.ChatOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var step = Next(messages, options);
        if (step.Delay is { } delay)
        {
            await Task.Delay(delay, cancellationToken);
        }

        var words = step.Text?.Split(' ') ?? [];
        for (var i = 0; i < words.Length; i++)
        {
            if (WordDelay > TimeSpan.Zero)
            {
                await Task.Delay(WordDelay, cancellationToken);
            }

            yield return new ProviderChunk(i == 0 ? words[i] : " " + words[i]);
        }

        if (step.Failure is not null)
        {
            throw step.Failure;
        }

        if (step.StallAtEnd)
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
        }

        yield return new ProviderChunk("", step.TokensIn, step.TokensOut, IsLast: true);
    }

    private ScriptStep Next(IReadOnlyList<AiChatMessage> messages, Microsoft.Extensions.AI.ChatOptions options)
    {
        LastMessages = messages;
        LastOptions = options;
        var call = Interlocked.Increment(ref _calls) - 1;
        return script[Math.Min(call, script.Length - 1)];
    }

    public sealed record ScriptStep(string? Text, ProviderException? Failure, TimeSpan? Delay, long? TokensIn = null, long? TokensOut = null)
    {
        public bool StallAtEnd { get; init; }
    }
}
