using System.Globalization;
using System.Text;

namespace PersistentAgents.Embeddings;

/// <summary>
/// Prepares text for all-MiniLM-L6-v2's uncased WordPiece vocabulary, doing what BertTokenizer cannot do here:
/// every run of whitespace becomes one space (BertTokenizer glues the words on either side of a line break or a tab
/// into one, "alpha\nbeta" reading as "alphabet a"), and Latin letters lose their accents, as the model's own
/// tokenizer did in training (NFD, then combining marks dropped). Under InvariantGlobalization string.Normalize
/// returns its input unchanged, so BertTokenizer's RemoveNonSpacingMarks never sees a mark to drop and "café" reads as
/// [UNK]; the folding tables below are that decomposition written out for the Latin blocks.
/// </summary>
internal static class MiniLmText
{
    private const char FirstLatin = '\u00C0';

    // U+00C0..U+024F (Latin-1 Supplement letters, Latin Extended-A and -B): each char is its code point's base letter
    // after canonical decomposition with the combining marks removed, or the code point itself when it has none.
    private const string LatinFolds =
        "AAAAAAÆCEEEEIIIIÐNOOOOO×ØUUUUYÞßaaaaaaæceeeeiiiiðnooooo÷øuuuuyþy"
        + "AaAaAaCcCcCcCcDdĐđEeEeEeEeEeGgGgGgGgHhĦħIiIiIiIiIıĲĳJjKkĸLlLlLlĿ"
        + "ŀŁłNnNnNnŉŊŋOoOoOoŒœRrRrRrSsSsSsSsTtTtŦŧUuUuUuUuUuUuWwYyYZzZzZzſ"
        + "ƀƁƂƃƄƅƆƇƈƉƊƋƌƍƎƏƐƑƒƓƔƕƖƗƘƙƚƛƜƝƞƟOoƢƣƤƥƦƧƨƩƪƫƬƭƮUuƱƲƳƴƵƶƷƸƹƺƻƼƽƾƿ"
        + "ǀǁǂǃǄǅǆǇǈǉǊǋǌAaIiOoUuUuUuUuUuǝAaAaÆæǤǥGgKkOoOoƷʒjǱǲǳGgǶǷNnAaÆæØø"
        + "AaAaEeEeIiIiOoOoRrRrUuUuSsTtȜȝHhȠȡȢȣȤȥAaEeOoOoOoOoYyȴȵȶȷȸȹȺȻȼȽȾȿ"
        + "ɀɁɂɃɄɅɆɇɈɉɊɋɌɍɎɏ";

    private const char FirstLatinAdditional = '\u1E00';

    // U+1E00..U+1EFF (Latin Extended Additional: Vietnamese, Welsh, ...), built the same way.
    private const string LatinAdditionalFolds =
        "AaBbBbBbCcDdDdDdDdDdEeEeEeEeEeFfGgHhHhHhHhHhIiIiKkKkKkLlLlLlLlMm"
        + "MmMmNnNnNnNnOoOoOoOoPpPpRrRrRrRrSsSsSsSsSsTtTtTtTtUuUuUuUuUuVvVv"
        + "WwWwWwWwWwXxXxYyZzZzZzhtwyẚſẜẝẞẟAaAaAaAaAaAaAaAaAaAaAaAaEeEeEeEe"
        + "EeEeEeEeIiIiOoOoOoOoOoOoOoOoOoOoOoOoUuUuUuUuUuUuUuYyYyYyYyỺỻỼỽỾỿ";

    public static string Normalize(string text)
    {
        var normalized = new StringBuilder(text.Length);
        var spaceBefore = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                spaceBefore = normalized.Length > 0;
                continue;
            }

            if (CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.NonSpacingMark)
            {
                continue;
            }

            if (spaceBefore)
            {
                normalized.Append(' ');
                spaceBefore = false;
            }

            normalized.Append(Fold(c));
        }

        return normalized.ToString();
    }

    private static char Fold(char c) =>
        c >= FirstLatin && c - FirstLatin < LatinFolds.Length ? LatinFolds[c - FirstLatin]
        : c >= FirstLatinAdditional && c - FirstLatinAdditional < LatinAdditionalFolds.Length ? LatinAdditionalFolds[c - FirstLatinAdditional]
        : c;
}
