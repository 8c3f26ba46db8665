using System.Globalization;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Spectre.Console;

namespace PersistentAgents.Cli;

/// <summary>Numbers, sizes and times as a person reads them in a terminal; the same on every machine.</summary>
public static class Formats
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Count(long value) => value.ToString("N0", Invariant);

    /// <summary>
    /// Dollars and cents from $1 up; below, three significant digits, so that the sub-cent cost of one
    /// reply is neither shown as $0.00 nor as a row of digits that means nothing.
    /// </summary>
    public static string Usd(double value)
    {
        if (value >= 1)
        {
            return "$" + value.ToString("#,0.00", Invariant);
        }

        if (value <= 0)
        {
            return "$0";
        }

        var decimals = Math.Clamp(2 - (int)Math.Floor(Math.Log10(value)), 2, 12);
        return "$" + Math.Round(value, decimals).ToString("0.00" + new string('#', decimals - 2), Invariant);
    }

    public static string Percent(double share) => share.ToString("0%", Invariant);

    public static string Score(double value) => value.ToString("0.00", Invariant);

    public static string Duration(double milliseconds) => milliseconds < 1000
        ? milliseconds.ToString("0", Invariant) + " ms"
        : (milliseconds / 1000).ToString("0.00", Invariant) + " s";

    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => bytes.ToString(Invariant) + " B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0", Invariant) + " KiB",
        _ => (bytes / (1024.0 * 1024)).ToString("0.0", Invariant) + " MiB",
    };

    public static string Time(Timestamp? at) =>
        at is null ? "never" : at.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss'Z'", Invariant);

    public static string Arm(string provider, string model) => $"{provider}/{model}";

    /// <summary>
    /// An arm as a table cell: the model over its provider, so that an arm column stays narrow enough for
    /// a table of numbers beside it to fit an 80-column terminal; ★ marks the arm the agent prefers.
    /// </summary>
    public static string ArmMarkup(string provider, string model, bool preferred) =>
        $"[bold]{Markup.Escape(model)}[/]{(preferred ? " [yellow]★[/]" : "")}\n[grey]{Markup.Escape(provider)}[/]";

    /// <summary>One line of at most <paramref name="maxLength"/> characters, so that a long reply does not make a table row a page.</summary>
    public static string Shorten(string text, int maxLength)
    {
        var line = new StringBuilder(Math.Min(text.Length, maxLength));
        var lastWasSpace = false;
        foreach (var c in text.Trim())
        {
            var isSpace = char.IsWhiteSpace(c);
            if (!(isSpace && lastWasSpace))
            {
                line.Append(isSpace ? ' ' : c);
            }

            lastWasSpace = isSpace;
            if (line.Length > maxLength)
            {
                line.Length = maxLength - 1;
                return line.Append('…').ToString();
            }
        }

        return line.ToString();
    }
}
