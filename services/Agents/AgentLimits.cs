namespace PersistentAgents.Agents;

/// <summary>Input limits of the agent API; larger input is refused with the field named.</summary>
public sealed class AgentLimits
{
    public int MaxPromptChars { get; set; } = 32_000;

    public int MaxContextBytes { get; set; } = 16 * 1024;

    /// <summary>Working-memory turns put back into the prompt.</summary>
    public int WorkingMemoryTurns { get; set; } = 6;

    /// <summary>Semantic memories recalled into the prompt.</summary>
    public int RecallTopK { get; set; } = 3;

    /// <summary>Memories less similar than this to the prompt are left out.</summary>
    public double RecallMinSimilarity { get; set; } = 0.3;

    /// <summary>Characters of recalled memory allowed into the prompt.</summary>
    public int RecallBudgetChars { get; set; } = 4_000;
}
