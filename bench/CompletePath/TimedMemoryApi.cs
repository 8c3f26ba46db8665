using System.Collections.Concurrent;
using System.Diagnostics;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Bench.CompletePath;

/// <summary>Wall-clock time and call count per memory operation.</summary>
public sealed class MemoryTimings
{
    private readonly ConcurrentDictionary<string, (long Calls, double Ms)> _byOperation = new();

    public void Add(string operation, TimeSpan elapsed) =>
        _byOperation.AddOrUpdate(operation, (1, elapsed.TotalMilliseconds), (_, t) => (t.Calls + 1, t.Ms + elapsed.TotalMilliseconds));

    public IReadOnlyDictionary<string, (long Calls, double Ms)> Snapshot() => new Dictionary<string, (long, double)>(_byOperation);

    public void Reset() => _byOperation.Clear();
}

/// <summary>Times every call into the memory service on its way through.</summary>
public sealed class TimedMemoryApi(IMemoryApi inner, MemoryTimings timings) : IMemoryApi
{
    public Task<WorkingMemory> GetWorkingMemoryAsync(GetWorkingMemoryRequest request, CancellationToken cancellationToken) =>
        TimeAsync("GetWorkingMemory", () => inner.GetWorkingMemoryAsync(request, cancellationToken));

    public Task<AppendTurnReply> AppendTurnAsync(AppendTurnRequest request, CancellationToken cancellationToken) =>
        TimeAsync("AppendTurn", () => inner.AppendTurnAsync(request, cancellationToken));

    public Task<RecallReply> RecallAsync(RecallRequest request, CancellationToken cancellationToken) =>
        TimeAsync("Recall", () => inner.RecallAsync(request, cancellationToken));

    public Task<RememberReply> RememberAsync(RememberRequest request, CancellationToken cancellationToken) =>
        TimeAsync("Remember", () => inner.RememberAsync(request, cancellationToken));

    public Task<AppendEpisodeReply> AppendEpisodeAsync(AppendEpisodeRequest request, CancellationToken cancellationToken) =>
        TimeAsync("AppendEpisode", () => inner.AppendEpisodeAsync(request, cancellationToken));

    public Task<EpisodeList> ListEpisodesAsync(ListEpisodesRequest request, CancellationToken cancellationToken) =>
        TimeAsync("ListEpisodes", () => inner.ListEpisodesAsync(request, cancellationToken));

    public Task<Episode> GetEpisodeAsync(GetEpisodeRequest request, CancellationToken cancellationToken) =>
        TimeAsync("GetEpisode", () => inner.GetEpisodeAsync(request, cancellationToken));

    public Task<MemoryUsageReply> GetUsageAsync(GetMemoryUsageRequest request, CancellationToken cancellationToken) =>
        TimeAsync("GetUsage", () => inner.GetUsageAsync(request, cancellationToken));

    public Task<PurgeReply> PurgeAsync(PurgeRequest request, CancellationToken cancellationToken) =>
        TimeAsync("Purge", () => inner.PurgeAsync(request, cancellationToken));

    public Task<EmbedReply> EmbedAsync(EmbedRequest request, CancellationToken cancellationToken) =>
        TimeAsync("Embed", () => inner.EmbedAsync(request, cancellationToken));

    private async Task<T> TimeAsync<T>(string operation, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await call();
        }
        finally
        {
            timings.Add(operation, Stopwatch.GetElapsedTime(started));
        }
    }
}
