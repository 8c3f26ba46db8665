using System.Collections.Concurrent;
using System.Globalization;
using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Gateway;

public sealed class ResponseCacheOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>How long a cached reply may be served.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Also serve a reply cached for a differently worded question in the same context, when the embeddings
    /// are close and <see cref="PromptMeaningGuard"/> finds no difference in meaning. Off by default: prompts
    /// that differ in one number or an added "not" embed almost identically, so only the guard stands
    /// between a near miss and a wrong answer. Needs a model embedder (the host refuses a lexical one).
    /// </summary>
    public bool Semantic { get; set; }

    /// <summary>Cosine similarity of the two questions at or above which a semantic hit is considered (0.9 to 1).</summary>
    public double SemanticThreshold { get; set; } = 0.99;

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
/// What a lookup found, and what it worked out on the way (the request's keys, the question's embedding)
/// so that storing the reply after a miss does not work it out again.
/// </summary>
public sealed class CacheLookup
{
    internal static readonly CacheLookup Bypassed = new(CacheHit.None, null, null, null);

    internal CacheLookup(CacheHit hit, GatewayReply? reply, RequestKeys? keys, QuestionEmbedding? question)
    {
        Hit = hit;
        Reply = reply;
        Keys = keys;
        Question = question;
    }

    public CacheHit Hit { get; }

    public GatewayReply? Reply { get; }

    /// <summary>Null when the request does not use the cache (disabled, or <c>no_cache</c>).</summary>
    internal RequestKeys? Keys { get; }

    /// <summary>Null until the semantic lookup needed it.</summary>
    internal QuestionEmbedding? Question { get; }
}

/// <summary>
/// The exact key hashes the whole context (everything but the last message's text) and the last message's
/// text; the context key is the semantic cache's partition. Texts are in <see cref="CacheKeyNormalizer"/>
/// form; the raw question is kept for <see cref="PromptMeaningGuard"/>.
/// </summary>
internal sealed record RequestKeys(string Exact, string Context, string Question);

/// <summary>A unit-length question vector; a truncated one stands for the start of the question only.</summary>
internal readonly record struct QuestionEmbedding(ReadOnlyMemory<float> Vector, bool Truncated);

/// <summary>
/// Replies by request. Exact: the hash of everything that can change the answer: tenant, agent, task type,
/// reply format, answer parameters (sampling, tools, schema ...), the candidate arms in order and every
/// message (role and normalised text). Semantic (off by default): the same context and a last question whose
/// embedding is close enough to one asked before and that <see cref="PromptMeaningGuard"/> lets share its
/// answer. The tenant is part of every key, so no tenant is ever served another's reply.
/// </summary>
public sealed class ResponseCache(IEmbeddingGenerator<string, Embedding<float>> embedder, IOptions<ResponseCacheOptions> options, TimeProvider timeProvider)
{
    private readonly ResponseCacheOptions _options = options.Value;
    private readonly (string Id, int Dimensions)? _embedderIdentity = IdentityOf(embedder);
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

    public async Task<CacheLookup> LookupAsync(GatewayRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_options.Enabled || request.NoCache)
        {
            return CacheLookup.Bypassed;
        }

        var now = timeProvider.GetUtcNow();
        var keys = KeysOf(request);
        if (_exact.TryGetValue(keys.Exact, out var exact) && exact.Expires > now)
        {
            Interlocked.Increment(ref _exactHits);
            return new CacheLookup(CacheHit.Exact, exact.Reply, keys, null);
        }

        QuestionEmbedding? question = null;
        // Only a person's question may be matched by meaning; a tool's result is data, matched exactly or not at all.
        if (_options.Semantic && request.Messages[^1].Role == "user" && _byContext.TryGetValue(keys.Context, out var candidates) && !candidates.IsEmpty)
        {
            question = await EmbedQuestionAsync(request, keys.Question, cancellationToken);
            if (SameMeaning(candidates.Values, keys.Question, question.Value, now) is { } similar)
            {
                Interlocked.Increment(ref _semanticHits);
                return new CacheLookup(CacheHit.Semantic, similar.Reply, keys, question);
            }
        }

        Interlocked.Increment(ref _misses);
        return new CacheLookup(CacheHit.None, null, keys, question);
    }

    /// <summary>Stores the reply to a request that <paramref name="lookup"/> missed, reusing the lookup's embedding.</summary>
    public async Task StoreAsync(GatewayRequest request, CacheLookup lookup, GatewayReply reply, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(lookup);
        ArgumentNullException.ThrowIfNull(reply);
        if (lookup.Keys is not { } keys || !reply.Success)
        {
            return;
        }

        var question = _options.Semantic ? lookup.Question ?? await EmbedQuestionAsync(request, keys.Question, cancellationToken) : (QuestionEmbedding?)null;
        // A truncated question is served exact hits only: its vector stands for its beginning.
        var semantic = question is { Truncated: false } whole ? whole : (QuestionEmbedding?)null;
        var now = timeProvider.GetUtcNow();
        var entry = new Entry(keys.Exact, keys.Context, reply.Clone(), semantic is null ? null : keys.Question, semantic?.Vector ?? default, now + _options.Ttl);
        lock (_writeLock)
        {
            if (_exact.Count >= _options.MaxEntries)
            {
                Evict(now);
            }

            _exact[keys.Exact] = entry;
            if (semantic is not null)
            {
                _byContext.GetOrAdd(keys.Context, _ => new ConcurrentDictionary<string, Entry>(StringComparer.Ordinal))[keys.Exact] = entry;
            }
        }
    }

    /// <summary>
    /// The closest live entry at or above the threshold that the guard lets share its answer; none for a
    /// truncated question, whose vector does not stand for all of it.
    /// </summary>
    private Entry? SameMeaning(IEnumerable<Entry> candidates, string questionText, QuestionEmbedding question, DateTimeOffset now)
    {
        if (question.Truncated)
        {
            return null;
        }

        var similar = new List<(Entry Entry, float Similarity)>();
        foreach (var candidate in candidates)
        {
            if (candidate.Expires > now && candidate.Vector.Length == question.Vector.Length)
            {
                var similarity = TensorPrimitives.Dot(candidate.Vector.Span, question.Vector.Span);
                if (similarity >= _options.SemanticThreshold)
                {
                    similar.Add((candidate, similarity));
                }
            }
        }

        return similar
            .OrderByDescending(s => s.Similarity)
            .Select(s => s.Entry)
            .FirstOrDefault(e => PromptMeaningGuard.Compare(e.QuestionText!, questionText).MayShareAnswer);
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

    /// <summary>The caller's embedding of the question when it comes from this cache's embedder, else one made here.</summary>
    private async Task<QuestionEmbedding> EmbedQuestionAsync(GatewayRequest request, string question, CancellationToken cancellationToken)
    {
        float[] vector;
        var truncated = false;
        if (_embedderIdentity is { } identity && request.QuestionEmbedderId == identity.Id && request.QuestionEmbedding.Count == identity.Dimensions)
        {
            vector = [.. request.QuestionEmbedding];
            truncated = request.QuestionEmbeddingTruncated;
        }
        else
        {
            var embedding = (await embedder.GenerateAsync([question], cancellationToken: cancellationToken))[0];
            vector = embedding.Vector.ToArray();
            truncated = Embedders.WasTruncated(embedding);
        }

        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }

        return new QuestionEmbedding(vector, truncated);
    }

    /// <summary>
    /// "{model}@{dimensions}", by which a caller names the embedder of a question embedding it sends, and the
    /// dimensions; null when the embedder does not say, and then no caller's embedding is taken.
    /// </summary>
    private static (string Id, int Dimensions)? IdentityOf(IEmbeddingGenerator<string, Embedding<float>> embedder) =>
        embedder.GetService<EmbeddingGeneratorMetadata>() is { DefaultModelId: { Length: > 0 }, DefaultModelDimensions: { } dimensions }
            ? (Embedders.IdOf(embedder), dimensions)
            : null;

    private static RequestKeys KeysOf(GatewayRequest request)
    {
        // Every field length-prefixed, so that no two different requests write the same text.
        var context = new StringBuilder();
        Field(context, request.Tenant);
        Field(context, request.Agent);
        Field(context, request.TaskType);
        Field(context, GatewayService.FormatOf(request).ToString());
        Field(context, request.AnswerParameters);
        // What the request asks of the answer in its own fields (the platform's routes set these without
        // answer parameters): the generation settings, tools and their choice, the reply's schema.
        Field(context, request.Options?.ToString() ?? "");
        Field(context, request.Tools.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var tool in request.Tools)
        {
            Field(context, tool.ToString());
        }

        Field(context, request.ToolChoice);
        Field(context, request.HasParallelToolCalls ? request.ParallelToolCalls.ToString() : "");
        Field(context, request.JsonSchema);
        Field(context, request.JsonSchemaName);
        Field(context, request.JsonSchemaStrict ? "strict" : "");
        Field(context, request.Candidates.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var arm in request.Candidates)
        {
            Field(context, arm.Provider);
            Field(context, arm.Model);
        }

        var messages = request.Messages;
        Field(context, messages.Count.ToString(CultureInfo.InvariantCulture));
        for (var i = 0; i < messages.Count; i++)
        {
            Field(context, messages[i].Role);
            if (i < messages.Count - 1)
            {
                Field(context, CacheKeyNormalizer.Normalize(messages[i].Content));
            }

            // Tool calls and results are data, not prose: exact, never normalised.
            Field(context, messages[i].ToolCallId);
            Field(context, messages[i].ToolCalls.Count.ToString(CultureInfo.InvariantCulture));
            foreach (var call in messages[i].ToolCalls)
            {
                Field(context, call.ToString());
            }
        }

        var question = messages.Count > 0 ? messages[^1].Content : "";
        var contextKey = Hash(context.ToString());
        var exactQuestion = messages.Count > 0 && messages[^1].Role == "tool" ? question : CacheKeyNormalizer.Normalize(question);
        return new RequestKeys(Hash(Field(new StringBuilder(contextKey), exactQuestion).ToString()), contextKey, question);
    }

    private static StringBuilder Field(StringBuilder text, string value) =>
        text.Append(value.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(value);

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>A cached reply; <see cref="QuestionText"/> and <see cref="Vector"/> only when it is in the semantic index.</summary>
    private sealed record Entry(string ExactKey, string ContextKey, GatewayReply Reply, string? QuestionText, ReadOnlyMemory<float> Vector, DateTimeOffset Expires);
}
