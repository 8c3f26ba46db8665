using System.Globalization;
using System.Text;

namespace PersistentAgents.Contracts;

/// <summary>
/// A caller's value as an error message shows it: quoted, cut to <see cref="MaxShown"/> characters and with
/// control characters escaped, so that a message never grows with the input (gRPC carries it in a header,
/// which has a size limit) and never breaks a log line.
/// </summary>
public static class ErrorText
{
    public const int MaxShown = 64;

    public static string Quote(string? value)
    {
        value ??= "";
        var shown = new StringBuilder("'");
        foreach (var c in value.Length > MaxShown ? value[..MaxShown] : value)
        {
            shown.Append(char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString(CultureInfo.InvariantCulture));
        }

        return shown.Append(value.Length > MaxShown ? $"…' ({value.Length} characters)" : "'").ToString();
    }
}
