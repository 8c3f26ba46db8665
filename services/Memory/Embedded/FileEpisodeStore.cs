using System.Globalization;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Memory.Embedded;

/// <summary>
/// Episodic memory as files: <c>episodes/{tenant}/{agent}/{yyyy-MM-dd}/{interactionId}.json</c>, each
/// written atomically. Names are validated before they get here; the path check is the last line of
/// defence against one escaping its folder.
/// </summary>
public sealed class FileEpisodeStore(string rootDirectory) : IEpisodeStore
{
    private readonly string _root = Path.GetFullPath(Path.Combine(rootDirectory, "episodes"));

    public async Task<string> AppendAsync(AgentScope scope, string interactionId, DateTimeOffset at, string json, CancellationToken cancellationToken)
    {
        var day = at.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var path = Path.Combine(AgentDirectory(scope), day, Segment(interactionId, nameof(interactionId)) + ".json");
        await AtomicFile.WriteAllTextAsync(path, json, cancellationToken);
        return Path.GetRelativePath(Path.GetDirectoryName(_root)!, path).Replace('\\', '/');
    }

    public Task<long> CountAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var directory = AgentDirectory(scope);
        return Task.FromResult(Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, "*.json", SearchOption.AllDirectories).LongCount()
            : 0L);
    }

    private string AgentDirectory(AgentScope scope) =>
        Path.Combine(_root, Segment(scope.Tenant, "tenant"), Segment(scope.Agent, "agent"));

    private static string Segment(string name, string what)
    {
        if (string.IsNullOrEmpty(name) || name is "." or ".." || name.IndexOfAny(['/', '\\', '\0']) >= 0)
        {
            throw new ArgumentException($"{what} '{name}' is not a plain folder name", what);
        }

        return name;
    }
}
