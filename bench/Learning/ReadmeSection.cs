namespace PersistentAgents.Bench.Learning;

/// <summary>The benchmark's section of bench/README.md, between two markers so a rerun replaces only its own part.</summary>
internal static class ReadmeSection
{
    public const string Begin = "<!-- learning:begin -->";
    public const string End = "<!-- learning:end -->";

    /// <summary>Replaces the text between the markers with <paramref name="section"/>, or appends both when they are absent.</summary>
    public static void Write(string readmePath, string section)
    {
        var readme = File.Exists(readmePath) ? File.ReadAllText(readmePath) : string.Empty;
        var block = $"{Begin}\n{section.TrimEnd('\n')}\n{End}";
        var begin = readme.IndexOf(Begin, StringComparison.Ordinal);
        var end = begin < 0 ? -1 : readme.IndexOf(End, begin, StringComparison.Ordinal);
        string updated;
        if (begin >= 0 && end >= 0)
        {
            updated = string.Concat(readme.AsSpan(0, begin), block, readme.AsSpan(end + End.Length));
        }
        else
        {
            var separator = readme.Length == 0 ? string.Empty : readme.EndsWith('\n') ? "\n" : "\n\n";
            updated = readme + separator + block + "\n";
        }

        File.WriteAllText(readmePath, updated);
    }
}
