using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PersistentAgents.Memory;

/// <summary>Whether semantic memory may still hold memories of another embedder; shared by recall and the re-embedding.</summary>
public sealed class StaleMemoryStatus
{
    private volatile bool _noneLeft;

    /// <summary>
    /// Set once the re-embedding found nothing left to do: from then on recall stops asking the store (in
    /// distributed mode a sidecar round trip per recall), since this process only writes its own embedder's vectors.
    /// </summary>
    public bool NoneLeft
    {
        get => _noneLeft;
        set => _noneLeft = value;
    }
}

/// <summary>
/// After the embedder changed (another model, other dimensions, or a store from before vectors named their
/// embedder), embeds the stored texts of the older memories again, newest first and in batches, until
/// none is left. Until then recall searches the memories already re-embedded and says it is degraded; it
/// never compares vectors of two models.
/// </summary>
public sealed class SemanticMemoryReembedding(IVectorStore vectors, MemoryService memory, StaleMemoryStatus status, ILogger<SemanticMemoryReembedding> logger) : BackgroundService
{
    /// <summary>Texts embedded per call: one batch for a batching embedder.</summary>
    public const int BatchSize = 32;

    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(10);

    /// <summary>Memories re-embedded since start.</summary>
    public long Reembedded => Interlocked.Read(ref _reembedded);

    private long _reembedded;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var announced = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            IReadOnlyList<StaleMemory> stale;
            try
            {
                stale = await vectors.ListStaleAsync(BatchSize, stoppingToken);
                if (stale.Count == 0)
                {
                    status.NoneLeft = true;
                    if (announced)
                    {
                        logger.LogInformation("Semantic memory re-embedded with {Embedder}: {Count} memories", vectors.Embedder, Reembedded);
                    }

                    return;
                }

                if (!announced)
                {
                    logger.LogWarning("Semantic memory holds memories embedded by {Other}: embedding them again with {Embedder}; until done, recall says it is degraded",
                        stale[0].Embedder.Length == 0 ? "an unnamed embedder" : stale[0].Embedder, vectors.Embedder);
                    announced = true;
                }

                var embedded = await memory.EmbedAsync([.. stale.Select(s => s.Text)], stoppingToken);
                for (var i = 0; i < stale.Count; i++)
                {
                    if (await vectors.ReplaceStaleAsync(stale[i], embedded[i], stoppingToken))
                    {
                        Interlocked.Increment(ref _reembedded);
                    }
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // An embedding endpoint or store that fails now may answer later; the memories stay stored.
                logger.LogWarning(e, "Re-embedding semantic memory failed; trying again in {Delay}", RetryDelay);
                await Task.Delay(RetryDelay, stoppingToken);
            }
        }
    }
}
