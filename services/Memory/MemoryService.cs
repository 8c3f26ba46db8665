using PersistentAgents.Embeddings;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Microsoft.ML.Tokenizers;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Memory;

/// <summary>The four memory tiers of every agent behind one API.</summary>
public sealed class MemoryService(
    IWorkingMemoryStore workingMemory,
    IVectorStore vectors,
    IEpisodeStore episodes,
    IEmbeddingGenerator<string, Embedding<float>> embedder,
    IOptions<MemoryOptions> options,
    TimeProvider timeProvider,
    StaleMemoryStatus? staleMemory = null) : IMemoryApi
{
    private const string DayFormat = "yyyy-MM-dd";

    /// <summary>Near-duplicates checked by the meaning guard before a memory is kept as new.</summary>
    private const int DuplicateCandidates = 3;
    private static readonly Tokenizer RecallTokenizer = TiktokenTokenizer.CreateForEncoding("o200k_base");
    private readonly MemoryOptions _options = options.Value;
    private readonly int? _dimensions = embedder.GetService<EmbeddingGeneratorMetadata>()?.DefaultModelDimensions;

    public async Task<WorkingMemory> GetWorkingMemoryAsync(GetWorkingMemoryRequest request, CancellationToken cancellationToken)
    {
        var turns = await workingMemory.GetRecentAsync(ScopeOf(request.Agent), request.SessionId, Math.Max(1, request.MaxTurns), cancellationToken);
        var reply = new WorkingMemory();
        reply.Turns.AddRange(turns.Select(t => new Turn
        {
            Prompt = t.Prompt,
            Reply = t.Reply,
            InteractionId = t.InteractionId,
            At = Timestamp.FromDateTimeOffset(t.At),
        }));
        return reply;
    }

    public async Task<AppendTurnReply> AppendTurnAsync(AppendTurnRequest request, CancellationToken cancellationToken)
    {
        var ttl = request.TtlSeconds > 0 ? TimeSpan.FromSeconds(request.TtlSeconds)
            : _options.WorkingMemoryTtlByAgent.GetValueOrDefault(request.Agent.Agent, _options.WorkingMemoryTtl);
        var turn = new WorkingTurn(request.Turn.Prompt, request.Turn.Reply, request.Turn.InteractionId, request.Turn.At?.ToDateTimeOffset() ?? timeProvider.GetUtcNow());
        await workingMemory.AppendAsync(ScopeOf(request.Agent), request.SessionId, turn, ttl, _options.MaxTurnsPerSession, cancellationToken);
        return new AppendTurnReply();
    }

    public async Task<RecallReply> RecallAsync(RecallRequest request, CancellationToken cancellationToken)
    {
        var scope = ScopeOf(request.Agent);
        var embedding = (await embedder.GenerateAsync([request.Query], cancellationToken: cancellationToken))[0];
        var query = UnitLength(embedding.Vector);
        var filter = new VectorFilter(request.TaskType.Length == 0 ? null : request.TaskType, request.SuccessfulOnly);
        var matches = await vectors.SearchAsync(scope, query, Math.Max(1, request.TopK), request.MinSimilarity, filter, cancellationToken);
        var reply = new RecallReply { Embedder = vectors.Embedder, QueryTruncated = Embedders.WasTruncated(embedding) };
        reply.QueryEmbedding.AddRange(query);
        var stale = staleMemory?.NoneLeft == true ? 0 : await vectors.CountStaleAsync(scope, cancellationToken);
        if (stale > 0)
        {
            reply.Degraded = $"memory re-embedding: {stale} memories are not yet embedded with {vectors.Embedder} and were not searched";
        }

        var budget = request.TokenBudget > 0 ? request.TokenBudget : int.MaxValue;
        foreach (var match in matches)
        {
            // Most similar first: a memory that does not fit the remaining budget ends the recall, so a
            // less relevant one never displaces a more relevant one.
            var tokens = RecallTokenizer.CountTokens(match.Record.Text);
            if (tokens > budget)
            {
                break;
            }

            budget -= tokens;
            reply.Memories.Add(new RecalledMemory
            {
                Id = match.Record.Id,
                Text = match.Record.Text,
                Similarity = match.Similarity,
                TaskType = match.Record.TaskType,
                Success = match.Record.Success,
                CostUsd = match.Record.CostUsd,
                Created = Timestamp.FromDateTimeOffset(match.Record.Created),
                Tokens = tokens,
            });
        }

        return reply;
    }

    public async Task<RememberReply> RememberAsync(RememberRequest request, CancellationToken cancellationToken)
    {
        var scope = ScopeOf(request.Agent);
        var vector = await EmbedAsync(request.Text, cancellationToken);

        // A near-duplicate of something already remembered refreshes that memory instead of crowding
        // recall with copies of the same fact; but one that says something else in nearly the same words
        // (another order number, an added "not", swapped names) is a fact of its own, and embeddings score
        // such pairs as high as true duplicates, so the meaning guard has the last word.
        var nearest = await vectors.SearchAsync(scope, vector, DuplicateCandidates, _options.DuplicateSimilarity, new VectorFilter(request.TaskType), cancellationToken);
        var duplicate = nearest.FirstOrDefault(n => PromptMeaningGuard.Compare(n.Record.Text, request.Text).MayShareAnswer);
        var id = duplicate?.Record.Id ?? request.Id;
        await vectors.UpsertAsync(
            new VectorRecord(id, scope, vector, request.Text, request.TaskType, request.Success, request.CostUsd, timeProvider.GetUtcNow()),
            cancellationToken);
        return new RememberReply { Id = id };
    }

    public async Task<AppendEpisodeReply> AppendEpisodeAsync(AppendEpisodeRequest request, CancellationToken cancellationToken)
    {
        var at = request.At?.ToDateTimeOffset() ?? timeProvider.GetUtcNow();
        var location = await episodes.AppendAsync(ScopeOf(request.Agent), request.InteractionId, at, request.Json, cancellationToken);
        return new AppendEpisodeReply { Location = location };
    }

    public async Task<EpisodeList> ListEpisodesAsync(ListEpisodesRequest request, CancellationToken cancellationToken)
    {
        var from = ParseDay(request.From, "from") ?? DateOnly.MinValue;
        var to = ParseDay(request.To, "to") ?? DateOnly.MaxValue;
        if (from > to)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "from: must not be after to"));
        }

        var limit = request.Limit is > 0 and <= 1000 ? request.Limit : 100;
        var list = new EpisodeList();
        list.Episodes.AddRange((await episodes.ListAsync(ScopeOf(request.Agent), from, to, limit, cancellationToken)).Select(e => new EpisodeRef
        {
            InteractionId = e.InteractionId,
            Day = e.Day.ToString(DayFormat, CultureInfo.InvariantCulture),
            Location = e.Location,
            Bytes = e.Bytes,
        }));
        return list;
    }

    public async Task<Episode> GetEpisodeAsync(GetEpisodeRequest request, CancellationToken cancellationToken)
    {
        if (!InteractionIds.TryGetTimestamp(request.InteractionId, out var at))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "interactionId: is not an interaction id (32 hex digits of a version 7 GUID)"));
        }

        var json = await episodes.GetAsync(ScopeOf(request.Agent), request.InteractionId, DateOnly.FromDateTime(at.UtcDateTime), cancellationToken)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"interactionId: no episode '{request.InteractionId}' for agent '{request.Agent.Agent}'"));
        return new Episode { InteractionId = request.InteractionId, Json = json };
    }

    public async Task<MemoryUsageReply> GetUsageAsync(GetMemoryUsageRequest request, CancellationToken cancellationToken)
    {
        var scope = ScopeOf(request.Agent);
        var working = await workingMemory.UsageAsync(scope, cancellationToken);
        var semantic = await vectors.UsageAsync(scope, cancellationToken);
        var episodic = await episodes.UsageAsync(scope, cancellationToken);
        return new MemoryUsageReply
        {
            WorkingTurns = working.Items,
            WorkingBytes = working.Bytes,
            SemanticMemories = semantic.Items,
            SemanticBytes = semantic.Bytes,
            Episodes = episodic.Items,
            EpisodeBytes = episodic.Bytes,
            Embedder = embedder.GetService<EmbeddingGeneratorMetadata>() is { } metadata
                ? $"{metadata.DefaultModelId} ({metadata.DefaultModelDimensions} dims, {metadata.ProviderName})"
                : "unknown",
        };
    }

    public async Task<PurgeReply> PurgeAsync(PurgeRequest request, CancellationToken cancellationToken)
    {
        var scope = ScopeOf(request.Agent);
        return new PurgeReply
        {
            WorkingTurns = await workingMemory.PurgeAsync(scope, cancellationToken),
            SemanticMemories = await vectors.PurgeAsync(scope, cancellationToken),
            Episodes = await episodes.PurgeAsync(scope, cancellationToken),
        };
    }

    /// <summary>
    /// The request's texts embedded as memory embeds its own (unit length, the embedder's dimensions), in one
    /// batch and in their order, each saying whether the model read only its beginning.
    /// </summary>
    public async Task<EmbedReply> EmbedAsync(EmbedRequest request, CancellationToken cancellationToken)
    {
        ValidateEmbed(request.Inputs);
        var generated = await embedder.GenerateAsync(request.Inputs, cancellationToken: cancellationToken);
        var reply = new EmbedReply
        {
            Embedder = vectors.Embedder,
            // The model's own count where it reports one (MiniLM: the word pieces it read, so not those cut
            // off); the hashed embedder reports none, and the words it hashes are its tokens.
            Tokens = generated.Usage?.InputTokenCount ?? request.Inputs.Sum(CountWords),
        };
        foreach (var embedding in generated)
        {
            var text = new EmbeddedText { Truncated = Embedders.WasTruncated(embedding) };
            text.Values.AddRange(UnitLength(embedding.Vector));
            reply.Embeddings.Add(text);
        }

        return reply;
    }

    /// <summary>
    /// A unit-length vector of the embedder's dimensions (the stores compare vectors by dot product): an
    /// endpoint that answers with other dimensions than it declared is refused, not stored beside the rest.
    /// </summary>
    public async Task<ReadOnlyMemory<float>> EmbedAsync(string text, CancellationToken cancellationToken) =>
        (await EmbedAsync([text], cancellationToken))[0];

    /// <summary>Several texts in one call, so that a batching embedder runs them as one batch.</summary>
    public async Task<IReadOnlyList<ReadOnlyMemory<float>>> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken) =>
        [.. (await embedder.GenerateAsync(texts, cancellationToken: cancellationToken)).Select(e => (ReadOnlyMemory<float>)UnitLength(e.Vector))];

    private float[] UnitLength(ReadOnlyMemory<float> generated)
    {
        var vector = generated.ToArray();
        if (_dimensions is { } declared && vector.Length != declared)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"the embedder {vectors.Embedder} returned {vector.Length} dimensions instead of {declared}"));
        }

        var norm = System.Numerics.Tensors.TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            System.Numerics.Tensors.TensorPrimitives.Divide(vector, norm, vector);
        }

        return vector;
    }

    private void ValidateEmbed(Google.Protobuf.Collections.RepeatedField<string> inputs)
    {
        if (inputs.Count == 0)
        {
            throw InvalidEmbed("inputs: must hold at least one text");
        }

        if (inputs.Count > _options.EmbedMaxInputs)
        {
            throw InvalidEmbed($"inputs: {inputs.Count} texts, the limit is {_options.EmbedMaxInputs} (Memory:{nameof(MemoryOptions.EmbedMaxInputs)})");
        }

        long total = 0;
        for (var i = 0; i < inputs.Count; i++)
        {
            var length = inputs[i].Length;
            if (length == 0)
            {
                throw InvalidEmbed($"inputs[{i}]: must not be empty");
            }

            if (length > _options.EmbedMaxInputCharacters)
            {
                throw InvalidEmbed($"inputs[{i}]: is {length} characters, the limit is {_options.EmbedMaxInputCharacters} (Memory:{nameof(MemoryOptions.EmbedMaxInputCharacters)})");
            }

            total += length;
        }

        if (total > _options.EmbedMaxTotalCharacters)
        {
            throw InvalidEmbed($"inputs: {total} characters in all, the limit is {_options.EmbedMaxTotalCharacters} (Memory:{nameof(MemoryOptions.EmbedMaxTotalCharacters)})");
        }
    }

    private static RpcException InvalidEmbed(string message) =>
        new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>Runs of letters and digits: the words <see cref="HashedNGramEmbedder"/> hashes.</summary>
    private static long CountWords(string text)
    {
        long words = 0;
        var inWord = false;
        foreach (var c in text)
        {
            var letterOrDigit = char.IsLetterOrDigit(c);
            if (letterOrDigit && !inWord)
            {
                words++;
            }

            inWord = letterOrDigit;
        }

        return words;
    }

    private static DateOnly? ParseDay(string value, string field)
    {
        if (value.Length == 0)
        {
            return null;
        }

        return DateOnly.TryParseExact(value, DayFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            ? day
            : throw new RpcException(new Status(StatusCode.InvalidArgument, $"{field}: must be a day as yyyy-MM-dd"));
    }

    internal static AgentScope ScopeOf(AgentRef agent) =>
        new(Tenancy.OrDefault(agent.Tenant), agent.Agent);
}
