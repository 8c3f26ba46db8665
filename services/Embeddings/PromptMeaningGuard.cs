using System.Globalization;
using System.Text;

namespace PersistentAgents.Embeddings;

/// <summary>Why two prompts may not share an answer; <see cref="None"/> when they may.</summary>
public enum PromptDifference
{
    None,
    Language,
    NumbersOrIdentifiers,
    Negation,
    ContentWords,
    WordOrder,
}

/// <summary>The guard's answer: whether two prompts may share an answer and, if not, why.</summary>
public readonly record struct GuardVerdict(PromptDifference Difference, string Reason)
{
    public static GuardVerdict Same { get; } = new(PromptDifference.None, "");

    public bool MayShareAnswer => Difference == PromptDifference.None;
}

/// <summary>
/// Decides from the full texts whether two prompts whose embeddings are close may still share an answer.
/// Embeddings, lexical or learned, score prompts that differ in one number, an added "not" or two swapped
/// names above any useful threshold, and cannot tell a synonym from an antonym; this guard cannot either,
/// so it lets through only differences it knows carry no meaning: case, punctuation, a few function words
/// ("a", "the", "do", "can", "please" ...) and a plural "s". Refused, in this order:
/// <list type="bullet">
/// <item>another language (script, else the most frequent stopwords of English, French, German, Spanish,
/// Italian or Portuguese; a text too short to tell is not compared);</item>
/// <item>other numbers or identifiers: any token with a digit, an e-mail, URL, path or code (a token with
/// <c>@ / \ _ # : = &lt; &gt; + * ^ % &amp; | ~ $ € £</c> or an inner dot), an operator standing alone, and a
/// name (a capitalised word not starting a sentence) the other text does not contain;</item>
/// <item>another count of negations (not, no, never, n't, without, none, nor, cannot, neither, instead of,
/// rather than, except, unless, and their French, German and Spanish counterparts);</item>
/// <item>a content word in one and not the other, however long the texts: "included" and "excluded" are
/// one word apart, and so is "approve" from "reject" in a long e-mail;</item>
/// <item>the same words, numbers and negations in another order ("Alice pays Bob", "Bob pays Alice").</item>
/// </list>
/// A refusal costs one provider call; a wrong pass serves one prompt's answer to another.
/// </summary>
public static class PromptMeaningGuard
{
    private const string Negated = "¬";

    private static readonly HashSet<string> FunctionWords = new(StringComparer.Ordinal)
    {
        "a", "an", "the", "do", "does", "can", "could", "would", "is", "are", "am", "be",
        "please", "kindly", "just", "hi", "hello", "hey", "thanks", "thank",
        "le", "la", "les", "l'", "un", "une", "des", "du",
        "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "bitte",
        "el", "los", "las", "unos", "unas",
    };

    private static readonly HashSet<string> NegationWords = new(StringComparer.Ordinal)
    {
        "not", "no", "never", "none", "nor", "neither", "cannot", "without", "nobody", "nothing", "nowhere", "except", "unless",
        "ne", "pas", "jamais", "sans", "aucun", "aucune", "rien",
        "nicht", "kein", "keine", "keinen", "keinem", "keiner", "nie", "niemals", "ohne", "nichts",
        "nunca", "sin", "ningún", "ninguno", "ninguna", "nada", "jamás", "tampoco",
    };

    private static readonly (string Language, HashSet<string> Words)[] Stopwords =
    [
        ("en", Set("the and is are was were what how why where when who which do does did my your you i to of in on for with this that it can could should would please not be have has from me we our")),
        ("fr", Set("le la les un une des du de et est sont que qui quoi comment pourquoi où quand je tu il elle nous vous mon ma mes ton votre pour avec dans sur pas ne ce cette au aux se")),
        ("de", Set("der die das den dem des ein eine einen und ist sind wie warum wo wann wer ich du er sie wir mein meine dein für mit auf nicht zu von kann können")),
        ("es", Set("el los las una unos y es son que qué cómo como por para con mi mis tu su yo se del al dónde cuándo porque puedo")),
        ("it", Set("il lo gli le una è sono che come perché dove quando io mio mia per con non della")),
        ("pt", Set("o os um uma é são que como por para com não meu minha eu do da onde quando")),
    ];

    public static GuardVerdict Compare(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var first = Reading.Of(a);
        var second = Reading.Of(b);

        if (first.Language is { } one && second.Language is { } other && one != other)
        {
            return new(PromptDifference.Language, $"different languages: {one} and {other}");
        }

        var identifiers = OnlyInOne(first.Identifiers, second.Identifiers);
        if (identifiers is not null)
        {
            return new(PromptDifference.NumbersOrIdentifiers, $"different numbers or identifiers: {identifiers}");
        }

        var name = first.Names.FirstOrDefault(n => !second.Words.Contains(n)) ?? second.Names.FirstOrDefault(n => !first.Words.Contains(n));
        if (name is not null)
        {
            return new(PromptDifference.NumbersOrIdentifiers, $"a name in one only: {name}");
        }

        if (first.Negations != second.Negations)
        {
            return new(PromptDifference.Negation, $"different negations: {first.Negations} and {second.Negations}");
        }

        var words = OnlyInOne(first.ContentWords, second.ContentWords);
        if (words is not null)
        {
            return new(PromptDifference.ContentWords, $"different content words: {words}");
        }

        return first.Sequence.SequenceEqual(second.Sequence, StringComparer.Ordinal)
            ? GuardVerdict.Same
            : new(PromptDifference.WordOrder, "the same words, numbers and negations in another order");
    }

    /// <summary>"x, y vs z": the tokens of each list the other lacks (as multisets), or null when there are none.</summary>
    private static string? OnlyInOne(List<string> first, List<string> second)
    {
        var onlyFirst = Except(first, second);
        var onlySecond = Except(second, first);
        return onlyFirst.Count == 0 && onlySecond.Count == 0
            ? null
            : $"{(onlyFirst.Count == 0 ? "-" : string.Join(", ", onlyFirst))} vs {(onlySecond.Count == 0 ? "-" : string.Join(", ", onlySecond))}";
    }

    private static List<string> Except(List<string> from, List<string> remove)
    {
        var left = new List<string>(from);
        foreach (var token in remove)
        {
            left.Remove(token);
        }

        return left;
    }

    private static HashSet<string> Set(string words) => new(words.Split(' '), StringComparer.Ordinal);

    /// <summary>What the guard reads in one text.</summary>
    private sealed class Reading
    {
        public string? Language { get; private set; }

        /// <summary>Numbers, codes, addresses and operators, lower-cased, in text order.</summary>
        public List<string> Identifiers { get; } = [];

        /// <summary>Capitalised words that do not start a sentence, lower-cased.</summary>
        public List<string> Names { get; } = [];

        /// <summary>Every word, lower-cased, function words included.</summary>
        public HashSet<string> Words { get; } = new(StringComparer.Ordinal);

        public int Negations { get; private set; }

        /// <summary>Words that are neither function words nor negations, lower-cased, a plural "s" removed.</summary>
        public List<string> ContentWords { get; } = [];

        /// <summary>Content words, identifiers and negations (as one mark) in text order.</summary>
        public List<string> Sequence { get; } = [];

        public static Reading Of(string text)
        {
            var reading = new Reading();
            string? previousWord = null;
            var letters = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var line in text.Split('\n'))
            {
                var sentenceStart = true;
                foreach (var chunk in line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
                {
                    var (token, opensQuote, endsSentence) = Trim(chunk);
                    if (token.Length > 0)
                    {
                        if (IsIdentifier(token))
                        {
                            var identifier = token.ToLowerInvariant();
                            reading.Identifiers.Add(identifier);
                            reading.Sequence.Add(identifier);
                            previousWord = null;
                        }
                        else
                        {
                            foreach (var word in WordsOf(token))
                            {
                                reading.Read(word, sentenceStart || opensQuote, ref previousWord);
                                sentenceStart = false;
                                opensQuote = false;
                            }
                        }

                        CountScript(token, letters);
                    }

                    sentenceStart = endsSentence || (token.Length == 0 && sentenceStart);
                }
            }

            reading.Language = Guess(letters, reading);
            return reading;
        }

        private void Read(string word, bool startsSentence, ref string? previousWord)
        {
            var lower = word.ToLowerInvariant();
            Words.Add(lower);
            if (!startsSentence && char.IsUpper(word[0]) && word.Length > 1 && !lower.StartsWith("i'", StringComparison.Ordinal) && !lower.StartsWith("i’", StringComparison.Ordinal))
            {
                Names.Add(lower);
            }

            // "instead of" and "rather than" are one negation, counted on their second word.
            var phrase = previousWord is not null && (previousWord, lower) is ("instead", "of") or ("rather", "than");
            if (NegationWords.Contains(lower) || lower.EndsWith("n't", StringComparison.Ordinal) || lower.EndsWith("n’t", StringComparison.Ordinal)
                || lower.StartsWith("n'", StringComparison.Ordinal) || lower.StartsWith("n’", StringComparison.Ordinal) || phrase)
            {
                Negations++;
                Sequence.Add(Negated);
                if (phrase)
                {
                    ContentWords.RemoveAt(ContentWords.Count - 1);
                    Sequence.RemoveAt(Sequence.Count - 2);
                }
            }
            else if (!FunctionWords.Contains(lower))
            {
                var content = WithoutPlural(lower);
                ContentWords.Add(content);
                Sequence.Add(content);
            }

            previousWord = lower;
        }

        private static string? Guess(Dictionary<string, int> letters, Reading reading)
        {
            if (letters.Count == 0)
            {
                return null;
            }

            var script = letters.MaxBy(s => s.Value).Key;
            if (script != "latin")
            {
                return script;
            }

            var scores = Stopwords
                .Select(s => (s.Language, Hits: reading.Words.Count(s.Words.Contains)))
                .OrderByDescending(s => s.Hits)
                .ToList();
            // Too few stopwords, or a tie, tells nothing: the other rules still compare the words.
            return scores[0].Hits >= 2 && scores[0].Hits > scores[1].Hits ? scores[0].Language : null;
        }

        private static void CountScript(string token, Dictionary<string, int> letters)
        {
            foreach (var c in token)
            {
                if (char.IsLetter(c))
                {
                    var script = ScriptOf(c);
                    letters[script] = letters.GetValueOrDefault(script) + 1;
                }
            }
        }

        private static string ScriptOf(char c) => c switch
        {
            <= '\u024F' => "latin",
            >= '\u0370' and <= '\u03FF' => "greek",
            >= '\u0400' and <= '\u04FF' => "cyrillic",
            >= '\u0590' and <= '\u05FF' => "hebrew",
            >= '\u0600' and <= '\u06FF' => "arabic",
            >= '\u0900' and <= '\u097F' => "devanagari",
            >= '\u0E00' and <= '\u0E7F' => "thai",
            >= '\u3040' and <= '\u30FF' => "japanese",
            >= '\u4E00' and <= '\u9FFF' => "han",
            >= '\uAC00' and <= '\uD7AF' => "korean",
            _ => "other",
        };

        /// <summary>
        /// The chunk without wrapping quotes, brackets and trailing punctuation; whether it opened a quote or
        /// bracket (a name may start quoted speech) and whether it ended a sentence.
        /// </summary>
        private static (string Token, bool OpensQuote, bool EndsSentence) Trim(string chunk)
        {
            var start = 0;
            var end = chunk.Length;
            while (start < end && "\"'“”‘’„‚«»([{¿¡".Contains(chunk[start], StringComparison.Ordinal))
            {
                start++;
            }

            var endsSentence = false;
            while (end > start && "\"'“”‘’„‚«»)]}.,;:!?…".Contains(chunk[end - 1], StringComparison.Ordinal))
            {
                // "5!" is a factorial, not an exclamation.
                if (chunk[end - 1] == '!' && end - 1 > start && char.IsAsciiDigit(chunk[end - 2]))
                {
                    break;
                }

                endsSentence |= chunk[end - 1] is '.' or '!' or '?' or ':' or '…';
                end--;
            }

            return (chunk[start..end], start > 0, endsSentence);
        }

        private static bool IsIdentifier(string token)
        {
            var letterOrDigit = false;
            for (var i = 0; i < token.Length; i++)
            {
                var c = token[i];
                if (char.IsDigit(c) || "@/\\_#:=<>+*^%&|~$€£×÷≤≥≠".Contains(c, StringComparison.Ordinal) || (c == '.' && i > 0 && i < token.Length - 1))
                {
                    return true;
                }

                letterOrDigit |= char.IsLetter(c);
            }

            // Dashes and ellipses standing alone are punctuation, not operators.
            return !letterOrDigit && token.Any(c => "+-*/=<>^%×÷≤≥≠".Contains(c, StringComparison.Ordinal)) && token.Any(c => c != '-');
        }

        /// <summary>Letter runs, keeping an apostrophe between letters ("don't", "l'heure").</summary>
        private static IEnumerable<string> WordsOf(string token)
        {
            var word = new StringBuilder();
            for (var i = 0; i < token.Length; i++)
            {
                var c = token[i];
                var apostrophe = c is '\'' or '’' && word.Length > 0 && i + 1 < token.Length && char.IsLetter(token[i + 1]);
                if (char.IsLetter(c) || apostrophe || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.NonSpacingMark)
                {
                    word.Append(c);
                }
                else if (word.Length > 0)
                {
                    yield return word.ToString();
                    word.Clear();
                }
            }

            if (word.Length > 0)
            {
                yield return word.ToString();
            }
        }

        private static string WithoutPlural(string word) =>
            word.Length > 3 && word[^1] == 's' && !word.EndsWith("ss", StringComparison.Ordinal) && !word.EndsWith("us", StringComparison.Ordinal) && !word.EndsWith("is", StringComparison.Ordinal)
                ? word[..^1]
                : word;
    }
}
