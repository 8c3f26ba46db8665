using PersistentAgents.Embeddings;

namespace PersistentAgents.Memory;

public sealed class MemoryOptions
{
    /// <summary>How long a working-memory turn lives.</summary>
    public TimeSpan WorkingMemoryTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Working-memory TTL of particular agents, by agent name; others get <see cref="WorkingMemoryTtl"/>.</summary>
    public Dictionary<string, TimeSpan> WorkingMemoryTtlByAgent { get; set; } = [];

    /// <summary>Turns kept per session; older ones are dropped when a new one arrives.</summary>
    public int MaxTurnsPerSession { get; set; } = 50;

    /// <summary>
    /// A memory this similar to an existing one replaces it instead of piling up beside it, when the meaning
    /// guard also finds nothing that tells them apart (another number or name, a negation, another content
    /// word or order). On the tuning split of bench/Memory's look-alike pairs the guard alone let no
    /// different-meaning pair through at any threshold from 0.80; 0.93 keeps a margin and still merges 11 of
    /// 13 restatements that differ only in case, punctuation or function words.
    /// </summary>
    public double DuplicateSimilarity { get; set; } = 0.93;

    /// <summary>How often expired working memory is swept from storage (reads never see it regardless).</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long episodes are kept.</summary>
    public TimeSpan EpisodeRetention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>Episodes of days at least this old are consolidated into one semantic memory per day and task type.</summary>
    public TimeSpan ConsolidateAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How often retention and consolidation run.</summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Agents whose semantic memory the embedded index keeps in RAM at once; past this the least recently
    /// used agent's partition is unloaded (its graph snapshotted first) and read back from SQLite on its
    /// next use. Bounds the index at about this many times an agent's memories × its size per memory (3.3 KB
    /// measured at 768 floats + graph; less at the default model's 384).
    /// </summary>
    public int ResidentAgents { get; set; } = 1_000;

    /// <summary>An agent's semantic memory unused this long is unloaded from RAM (it stays in SQLite).</summary>
    public TimeSpan IdleUnloadAfter { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Semantic memories kept per agent; past this the oldest (by when last written) are deleted.</summary>
    public int MaxSemanticMemoriesPerAgent { get; set; } = 10_000;

    /// <summary>Texts one <c>Embed</c> call (the OpenAI-compatible <c>/v1/embeddings</c>) may carry.</summary>
    public int EmbedMaxInputs { get; set; } = 256;

    /// <summary>
    /// Characters of one text an <c>Embed</c> call may carry. The model reads only its window (MiniLM: 256 word
    /// pieces) and says the rest was cut; the bound keeps what is tokenised to no use small.
    /// </summary>
    public int EmbedMaxInputCharacters { get; set; } = 32_768;

    /// <summary>Characters of all texts of one <c>Embed</c> call together.</summary>
    public int EmbedMaxTotalCharacters { get; set; } = 1_048_576;

    /// <summary>
    /// The embedder (<see cref="EmbeddingOptions.Kind"/>: minilm, the default; hashed; or an OpenAI-compatible
    /// endpoint, whose missing key falls back to minilm). The stores hold whatever dimensions it makes, and
    /// memories of an earlier embedder are embedded again from their texts.
    /// </summary>
    public EmbeddingOptions? Embeddings { get; set; }
}