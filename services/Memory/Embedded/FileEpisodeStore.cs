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
        var path = Contained(Path.Combine(AgentDirectory(scope), day, interactionId + ".json"));
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

    private string AgentDirectory(AgentScope scope) => Contained(Path.Combine(_root, scope.Tenant, scope.Agent));

    private string Contained(string path)
    {
        var full = Path.GetFullPath(path);
        if (!full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{path}' escapes the episode folder", nameof(path));
        }

        return full;
    }
}
