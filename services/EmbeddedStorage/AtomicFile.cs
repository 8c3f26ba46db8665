using System.Runtime.InteropServices;
using System.Text;

namespace PersistentAgents.EmbeddedStorage;

/// <summary>
/// Writes a file so that a reader (or a restart after a crash) sees all of it or none of it, and so that
/// once the write returns the file survives a power loss: its contents, its name and any folder made for it.
/// </summary>
public static class AtomicFile
{
    private const int ReadOnly = 0;

    public static async Task WriteAllTextAsync(string path, string contents, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var createdDirectories = MissingDirectories(directory);
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
            await using (var writer = new StreamWriter(stream))
            {
                await writer.WriteAsync(contents.AsMemory(), cancellationToken);
                await writer.FlushAsync(cancellationToken);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }

        // The rename, and the entries of folders made for it, live in their parent folders: until those are
        // flushed a power loss can undo them even though the file's own bytes are on disk.
        FlushDirectory(directory);
        foreach (var created in createdDirectories)
        {
            FlushDirectory(Path.GetDirectoryName(created)!);
        }
    }

    /// <summary>The folders that creating <paramref name="directory"/> will make, innermost first.</summary>
    private static List<string> MissingDirectories(string directory)
    {
        var missing = new List<string>();
        for (var current = directory; current is not null && !Directory.Exists(current); current = Path.GetDirectoryName(current))
        {
            missing.Add(current);
        }

        return missing;
    }

    private static void FlushDirectory(string directory)
    {
        // Windows offers no flush of a folder; NTFS journals its metadata instead.
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var descriptor = Open(Encoding.UTF8.GetBytes(directory + '\0'), ReadOnly);
        if (descriptor < 0)
        {
            throw new IOException($"could not open folder {directory} to flush it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Fsync(descriptor) != 0)
            {
                throw new IOException($"could not flush folder {directory} (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(descriptor);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Open(byte[] path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Fsync(int descriptor);

    [DllImport("libc", EntryPoint = "close")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Close(int descriptor);
}
