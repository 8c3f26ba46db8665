namespace PersistentAgents.Agents;

/// <summary>Input limits of the agent API; larger input is refused with the field named.</summary>
public sealed class AgentLimits
{
    public int MaxPromptChars { get; set; } = 32_000;

    public int MaxContextBytes { get; set; } = 16 * 1024;

    /// <summary>Fields of the context object, at its top level.</summary>
    public int MaxContextEntries { get; set; } = 64;

    /// <summary>Levels of objects and lists inside the context (the context itself is level 1).</summary>
    public int MaxContextDepth { get; set; } = 8;

    /// <summary>Episodes one page of the episodes route lists at most.</summary>
    public int MaxEpisodesPage { get; set; } = 1_000;

    /// <summary>Working-memory turns put back into the prompt.</summary>
    public int WorkingMemoryTurns { get; set; } = 6;

    /// <summary>
    /// Semantic memories recalled into the prompt. Chosen with the floor on the tuning split of bench/Memory
    /// with the default embedder (all-MiniLM-L6-v2): top 5 at 0.35 kept the right memory for 0.66 of the
    /// questions with 2.9 wrong ones beside it, where top 3 at 0.3 kept 0.57 (bench/README.md).
    /// </summary>
    public int RecallTopK { get; set; } = 5;

    /// <summary>Memories less similar than this to the prompt are left out (cosine, for the default embedder; see <see cref="RecallTopK"/>).</summary>
    public double RecallMinSimilarity { get; set; } = 0.35;

    /// <summary>Tokens of recalled memory allowed into the prompt.</summary>
    public int RecallTokenBudget { get; set; } = 1_000;

    /// <summary>Turns the working-memory route shows at most.</summary>
    public int MaxWorkingMemoryTurnsShown { get; set; } = 50;

    /// <summary>Memories the recall route returns at most.</summary>
    public int MaxRecallTopK { get; set; } = 50;

    /// <summary>Distributed mode: when an agent's actor first consolidates its memory after activation.</summary>
    public TimeSpan ConsolidationDueTime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Distributed mode: how often an agent's actor consolidates its finished days of episodes.</summary>
    public TimeSpan ConsolidationPeriod { get; set; } = TimeSpan.FromHours(24);
}
