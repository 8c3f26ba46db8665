namespace PersistentAgents.Tests.Shared;

internal static class RepositoryRoot
{
    /// <summary>The folder holding PersistentAgents.sln, found by walking up from the test binaries.</summary>
    public static string Find()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "PersistentAgents.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no PersistentAgents.sln above {AppContext.BaseDirectory}");
    }
}
