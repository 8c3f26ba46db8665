using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// A provider that answers with the latency, failure rate and quality its catalog entry declares per task
/// type. It makes demos, tests and benchmarks reproducible without an API key, and every reply it makes
/// is labelled simulated.
/// </summary>
public sealed class SimulatedProvider(string name) : IChatModelProvider
{
    public string Name { get; } = name;

    public bool Simulated => true;

    public async Task<ProviderCompletion> CompleteAsync(
        ModelDefinition model, string taskType, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken)
    {
        var behaviour = model.Simulation!.For(taskType);
        var latency = behaviour.LatencyMs!.Value * (0.8 + (0.4 * Random.Shared.NextDouble()));
        if (latency > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(latency), cancellationToken);
        }

        if (Random.Shared.NextDouble() < behaviour.FailureRate!.Value)
        {
            throw new ProviderException($"simulated failure of {Name}/{model.Name}", retryable: true);
        }

        var prompt = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        var words = prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var excerpt = string.Join(' ', words.Take(12));
        var text = $"[simulated {Name}/{model.Name}] {taskType}: handled a {words.Length}-word request " +
                   $"(\"{excerpt}{(words.Length > 12 ? " …" : "")}\") with {messages.Count - 1} lines of context.";
        return new ProviderCompletion(text, InputTokens: null, OutputTokens: null, behaviour.Quality);
    }
}
