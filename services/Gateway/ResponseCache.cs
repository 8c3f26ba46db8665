using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Gateway;

public sealed class ResponseCacheOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>How long a cached reply may be served.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Also serve a reply cached for a differently worded question in the same context.</summary>
    public bool Semantic { get; set; } = true;

    /// <summary>Cosine similarity of the two questions at or above which a semantic hit is served.</summary>
    public double SemanticThreshold { get; set; } = 0.97;

    /// <summary>Entries kept; the ones closest to expiry go first when full.</summary>
    public int MaxEntries { get; set; } = 10_000;
}

public enum CacheHit
{
    None,
    Exact,
    Semantic,
}

/// <summary>
/// Replies by request. Exact: the hash of the normalised request (tenant, task type, every message).
/// Semantic: the same tenant, task type and context (every message but the last question), and a last
/// question whose embedding is close enough to one asked before. The tenant is part of every key, so no
/// tenant is ever served another's reply.
/// </summary>
public sealed class ResponseCache(IEmbeddingGenerator<string, Embedding<float>> embedder, IOptions<ResponseCacheOptions> options, TimeProvider timeProvider)
{
    private readonly ResponseCacheOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, Entry> _exact = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, Entry>> _byContext = new(StringComparer.Ordinal);

    // Writers and eviction take turns, so that a context whose last entry is evicted can be removed without
    // losing an entry being added to it at the same moment; lookups take no lock.
    private readonly Lock _writeLock = new();
    private long _exactHits;
    private long _semanticHits;
    private long _misses;

    public (long ExactHits, long SemanticHits, long Misses, int Entries) Counters =>
        (Interlocked.Read(ref _exactHits), Interlocked.Read(ref _semanticHits), Interlocked.Read(ref _misses), _exact.Count);

    /// <summary>Contexts the semantic cache holds questions for; never more than there are entries.</summary>
    public int Contexts => _byContext.Count;

    public async Task<(CacheHit Hit, GatewayReply? Reply)> LookupAsync(GatewayRequest request, CancellationToken cancellationToken)
    {
        if (!_options.Enabled || request.NoCache)
        {
            return (CacheHit.None, null);
        }

        var now = timeProvider.GetUtcNow();
        var (exactKey, contextKey, question) = Keys(request);
        if (_exact.TryGetValue(exactKey, out var exact) && exact.Expires > now)
        {
            Interlocked.Increment(ref _exactHits);
            return (CacheHit.Exact, exact.Reply);
        }

        if (_options.Semantic && _byContext.TryGetValue(contextKey, out var candidates) && !candidates.IsEmpty)
        {
            var vector = await EmbedAsync(question, cancellationToken);
            Entry? best = null;
            var bestSimilarity = _options.SemanticThreshold;
            foreach (var candidate in candidates.Values)
            {
                if (candidate.Expires > now && candidate.Question.Length == vector.Length)
                {
                    var similarity = TensorPrimitives.Dot(candidate.Question.Span, vector.Span);
                    if (similarity >= bestSimilarity)
                    {
                        (best, bestSimilarity) = (candidate, similarity);
                    }
                }
            }

            if (best is not null)
            {
                Interlocked.Increment(ref _semanticHits);
                return (CacheHit.Semantic, best.Reply);
            }
        }

        Interlocked.Increment(ref _misses);
        return (CacheHit.None, null);
    }

    public async Task StoreAsync(GatewayRequest request, GatewayReply reply, CancellationToken cancellationToken)
    {
        if (!_options.Enabled || request.NoCache || !reply.Success)
        {
            return;
        }

        var (exactKey, contextKey, question) = Keys(request);
        var vector = _options.Semantic ? await EmbedAsync(question, cancellationToken) : ReadOnlyMemory<float>.Empty;
        var now = timeProvider.GetUtcNow();
        var entry = new Entry(exactKey, contextKey, reply.Clone(), vector, now + _options.Ttl);
        lock (_writeLock)
        {
            if (_exact.Count >= _options.MaxEntries)
            {
                Evict(now);
            }

            _exact[exactKey] = entry;
            if (_options.Semantic)
            {
                _byContext.GetOrAdd(contextKey, _ => new ConcurrentDictionary<string, Entry>(StringComparer.Ordinal))[exactKey] = entry;
            }
        }
    }

    /// <summary>Expired entries, or else the tenth closest to expiry. Call with the write lock held.</summary>
    private void Evict(DateTimeOffset now)
    {
        var victims = _exact.Values.Where(e => e.Expires <= now).ToList();
        if (victims.Count == 0)
        {
            victims = _exact.Values.OrderBy(e => e.Expires).Take(Math.Max(1, _options.MaxEntries / 10)).ToList();
        }

        foreach (var victim in victims)
        {
            _exact.TryRemove(victim.ExactKey, out _);
            if (_byContext.TryGetValue(victim.ContextKey, out var context))
            {
                // Only the entry itself, not a newer one stored under the same key since.
                context.TryRemove(KeyValuePair.Create(victim.ExactKey, victim));
                if (context.IsEmpty)
                {
                    _byContext.TryRemove(victim.ContextKey, out _);
                }
            }
        }
    }

    private async Task<ReadOnlyMemory<float>> EmbedAsync(string text, CancellationToken cancellationToken)
    {
        var vector = (await embedder.GenerateVectorAsync(text, cancellationToken: cancellationToken)).ToArray();
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }

        return vector;
    }

    /// <summary>Whitespace-normalised: requests that differ only in spacing are the same request.</summary>
    private static (string Exact, string Context, string Question) Keys(GatewayRequest request)
    {
        var context = new StringBuilder().Append(request.Tenant).Append('\0').Append(request.TaskType);
        var messages = request.Messages;
        for (var i = 0; i < messages.Count - 1; i++)
        {
            context.Append('\0').Append(messages[i].Role).Append(':').AppendJoin(' ', Words(messages[i].Content));
        }

        var question = messages.Count > 0 ? string.Join(' ', Words(messages[^1].Content)) : "";
        var contextKey = Hash(context.ToString());
        return (Hash($"{contextKey}\0{question}"), contextKey, question);
    }

    private static string[] Words(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private sealed record Entry(string ExactKey, string ContextKey, GatewayReply Reply, ReadOnlyMemory<float> Question, DateTimeOffset Expires);
}
