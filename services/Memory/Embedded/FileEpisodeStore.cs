using System.Globalization;
using PersistentAgents.EmbeddedStorage;

namespace PersistentAgents.Memory.Embedded;

/// <summary>
/// Episodic memory as files: <c>episodes/{tenant}/{agent}/{yyyy-MM-dd}/{interactionId}.json</c>, each
/// written atomically. Tenant, agent and interaction id must each be one plain path segment, so no name
/// can reach another agent's or tenant's folder whatever checks ran before it got here.
/// </summary>
public sealed class FileEpisodeStore(string rootDirectory) : IEpisodeStore
{
    private const string DayFormat = "yyyy-MM-dd";
    private readonly string _root = Path.GetFullPath(Path.Combine(rootDirectory, "episodes"));

    public async Task<string> AppendAsync(AgentScope scope, string interactionId, DateTimeOffset at, string json, CancellationToken cancellationToken)
    {
        var path = EpisodePath(scope, interactionId, DateOnly.FromDateTime(at.UtcDateTime));
        await AtomicFile.WriteAllTextAsync(path, json, cancellationToken);
        return Location(path);
    }

    public async Task<string?> GetAsync(AgentScope scope, string interactionId, DateOnly day, CancellationToken cancellationToken)
    {
        var path = EpisodePath(scope, interactionId, day);
        return File.Exists(path) ? await File.ReadAllTextAsync(path, cancellationToken) : null;
    }

    public Task<IReadOnlyList<EpisodeEntry>> ListAsync(AgentScope scope, DateOnly firstDay, DateOnly lastDay, int limit, CancellationToken cancellationToken)
    {
        var entries = Days(AgentDirectory(scope))
            .Where(d => d.Day >= firstDay && d.Day <= lastDay)
            .OrderBy(d => d.Day)
            .SelectMany(d => new DirectoryInfo(d.Path).EnumerateFiles("*.json")
                .OrderBy(f => f.Name, StringComparer.Ordinal)
                .Select(f => new EpisodeEntry(Path.GetFileNameWithoutExtension(f.Name), d.Day, Location(f.FullName), f.Length)))
            .Take(limit)
            .ToList();
        return Task.FromResult<IReadOnlyList<EpisodeEntry>>(entries);
    }

    public Task<IReadOnlyList<AgentScope>> ListScopesAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<AgentScope> scopes = Directory.Exists(_root)
            ? Directory.EnumerateDirectories(_root)
                .SelectMany(tenant => Directory.EnumerateDirectories(tenant)
                    .Select(agent => new AgentScope(Path.GetFileName(tenant), Path.GetFileName(agent))))
                .ToList()
            : [];
        return Task.FromResult(scopes);
    }

    public async Task<long> DeleteBeforeAsync(DateOnly cutoff, CancellationToken cancellationToken)
    {
        long deleted = 0;
        foreach (var scope in await ListScopesAsync(cancellationToken))
        {
            foreach (var (day, path) in Days(AgentDirectory(scope)).Where(d => d.Day < cutoff))
            {
                deleted += Directory.EnumerateFiles(path, "*.json").LongCount();
                Directory.Delete(path, recursive: true);
            }
        }

        return deleted;
    }

    /// <summary>
    /// Deletes the agent's episodes whose interaction id sorts after <paramref name="lastKeptId"/> (ids begin
    /// with their time, so that is "stored later"), looking at the days from <paramref name="fromDay"/> on, and
    /// says which it deleted.
    /// </summary>
    public IReadOnlyList<string> DeleteAfter(AgentScope scope, string lastKeptId, DateOnly fromDay)
    {
        var deleted = new List<string>();
        foreach (var (_, path) in Days(AgentDirectory(scope)).Where(d => d.Day >= fromDay))
        {
            foreach (var file in Directory.EnumerateFiles(path, "*.json"))
            {
                var id = Path.GetFileNameWithoutExtension(file);
                if (string.CompareOrdinal(id, lastKeptId) > 0)
                {
                    File.Delete(file);
                    deleted.Add(id);
                }
            }
        }

        return deleted;
    }

    public Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var directory = new DirectoryInfo(AgentDirectory(scope));
        if (!directory.Exists)
        {
            return Task.FromResult(new TierUsage(0, 0));
        }

        var files = directory.EnumerateFiles("*.json", SearchOption.AllDirectories).ToList();
        return Task.FromResult(new TierUsage(files.Count, files.Sum(f => f.Length)));
    }

    public Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        var directory = AgentDirectory(scope);
        if (!Directory.Exists(directory))
        {
            return Task.FromResult(0L);
        }

        var count = Directory.EnumerateFiles(directory, "*.json", SearchOption.AllDirectories).LongCount();
        Directory.Delete(directory, recursive: true);
        return Task.FromResult(count);
    }

    private static IEnumerable<(DateOnly Day, string Path)> Days(string agentDirectory) =>
        Directory.Exists(agentDirectory)
            ? Directory.EnumerateDirectories(agentDirectory)
                .Select(path => (Parsed: DateOnly.TryParseExact(System.IO.Path.GetFileName(path), DayFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var day), Day: day, Path: path))
                .Where(d => d.Parsed)
                .Select(d => (d.Day, d.Path))
            : [];

    private string EpisodePath(AgentScope scope, string interactionId, DateOnly day) =>
        Path.Combine(AgentDirectory(scope), day.ToString(DayFormat, CultureInfo.InvariantCulture), Segment(interactionId, nameof(interactionId)) + ".json");

    private string Location(string path) => Path.GetRelativePath(Path.GetDirectoryName(_root)!, path).Replace('\\', '/');

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
