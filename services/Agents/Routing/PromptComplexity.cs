using System.Text.RegularExpressions;

namespace PersistentAgents.Agents.Routing;

/// <summary>
/// How hard a prompt looks, 0..1, from what can be seen before any model is called: its length, whether it
/// asks for reasoning, carries code or asks several things. The learning service learns easy and hard
/// prompts apart, so a cheap model can take the easy ones when it does as well on them.
/// </summary>
public static partial class PromptComplexity
{
    /// <summary>Prompts of this many estimated tokens or more count as long.</summary>
    public const int LongPromptTokens = 600;

    public static double Of(string prompt, string? contextJson)
    {
        var estimatedTokens = (prompt.Length + (contextJson?.Length ?? 0)) / 4.0;
        var score = 0.45 * Math.Min(1, estimatedTokens / LongPromptTokens);
        score += Math.Min(0.35, 0.2 * ReasoningWords().Count(prompt));
        score += CodeMarkers().IsMatch(prompt) ? 0.2 : 0;
        score += prompt.Count(c => c == '?') >= 2 ? 0.1 : 0;
        return Math.Clamp(score, 0, 1);
    }

    [GeneratedRegex(@"\b(why|explain|prove|derive|analy[sz]e|compare|evaluate|design|trade-?offs?|optimi[sz]e|step by step|reason|justify|plan)\b", RegexOptions.IgnoreCase)]
    private static partial Regex ReasoningWords();

    [GeneratedRegex(@"```|\b(def|class|function|return|SELECT|public|import)\b.*[;:{(]", RegexOptions.Multiline)]
    private static partial Regex CodeMarkers();
}
