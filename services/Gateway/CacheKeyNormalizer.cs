using System.Text;

namespace PersistentAgents.Gateway;

/// <summary>
/// The text a message is keyed by in the exact response cache. Only what cannot change the answer is
/// folded: case, runs of whitespace, sentence-final <c>. ! ?</c> and quotes that wrap text. Every other
/// symbol stays, because "2+2" and "2*2", "x&lt;5" and "x&gt;5", "3.5" and "35", "-5" and "5" ask different
/// things.
/// </summary>
public static class CacheKeyNormalizer
{
    private const string Quotes = "\"'“”„‘’‚";

    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var folded = FoldCaseAndWhitespace(text);
        var kept = new bool[folded.Length];
        Array.Fill(kept, true);
        DropWrappingQuotes(folded, kept);
        DropSentenceFinalPunctuation(folded, kept);

        var normalized = new StringBuilder(folded.Length);
        for (var i = 0; i < folded.Length; i++)
        {
            // Dropping punctuation can leave two spaces side by side ("wait . now") or one at either end.
            if (kept[i] && !(folded[i] == ' ' && (normalized.Length == 0 || normalized[^1] == ' ')))
            {
                normalized.Append(folded[i]);
            }
        }

        return normalized.ToString().TrimEnd(' ');
    }

    private static string FoldCaseAndWhitespace(string text)
    {
        var folded = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                if (folded.Length > 0 && folded[^1] != ' ')
                {
                    folded.Append(' ');
                }
            }
            else
            {
                folded.Append(char.ToLowerInvariant(c));
            }
        }

        return folded.ToString().TrimEnd(' ');
    }

    /// <summary>
    /// A quote that opens a word (after a space, a bracket or the start) paired with the next quote of the
    /// same kind that closes one (before a space, punctuation or the end). Apostrophes ("don't") and lone
    /// marks such as feet and inches (5' 10") have no partner and stay.
    /// </summary>
    private static void DropWrappingQuotes(string text, bool[] kept)
    {
        for (var open = 0; open < text.Length; open++)
        {
            if (!kept[open] || !IsQuote(text[open]) || !Opens(text, open))
            {
                continue;
            }

            for (var close = open + 2; close < text.Length; close++)
            {
                if (kept[close] && IsQuote(text[close]) && SameKind(text[open], text[close]) && Closes(text, close))
                {
                    kept[open] = false;
                    kept[close] = false;
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Runs of <c>. ! ?</c> at the end or before a space. A <c>!</c> right after a digit is a factorial
    /// ("5!" is not "5") and stays.
    /// </summary>
    private static void DropSentenceFinalPunctuation(string text, bool[] kept)
    {
        var i = 0;
        while (i < text.Length)
        {
            if (!kept[i] || !IsSentenceEnd(text[i]))
            {
                i++;
                continue;
            }

            var end = i;
            while (end < text.Length && (!kept[end] || IsSentenceEnd(text[end])))
            {
                end++;
            }

            var previous = PreviousKept(text, kept, i);
            var factorial = text[i] == '!' && previous >= 0 && char.IsAsciiDigit(text[previous]);
            if ((end == text.Length || text[end] == ' ') && !factorial)
            {
                for (var j = i; j < end; j++)
                {
                    kept[j] = false;
                }
            }

            i = end;
        }
    }

    private static int PreviousKept(string text, bool[] kept, int index)
    {
        var i = index - 1;
        while (i >= 0 && !kept[i])
        {
            i--;
        }

        return i;
    }

    private static bool IsSentenceEnd(char c) => c is '.' or '!' or '?' or '…';

    private static bool IsQuote(char c) => Quotes.Contains(c, StringComparison.Ordinal);

    private static bool SameKind(char a, char b) => IsDouble(a) == IsDouble(b);

    private static bool IsDouble(char c) => c is '"' or '“' or '”' or '„';

    private static bool Opens(string text, int i) =>
        (i == 0 || text[i - 1] is ' ' or '(' or '[' or '{') && i + 1 < text.Length && text[i + 1] != ' ';

    private static bool Closes(string text, int i) =>
        text[i - 1] != ' ' && (i + 1 == text.Length || text[i + 1] is ' ' or '.' or ',' or ';' or ':' or '!' or '?' or '…' or ')' or ']' or '}');
}
