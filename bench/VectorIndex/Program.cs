using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using System.Text.Json;
using PersistentAgents.Memory.Embedded;

namespace PersistentAgents.Bench.VectorIndex;

/// <summary>
/// Our HNSW index against hnswlib on the same synthetic clustered unit vectors: build time, recall@10 against
/// exact brute force, single-thread QPS at several ef, memory per vector. See bench/README.md.
/// </summary>
internal static class Program
{
    private const int K = 10;
    private const int DataMagic = 0x58444956; // "VIDX"
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static int Main(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Options.Usage);
            return 2;
        }

        if (options.Help)
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }

        Log($"{options.Count:N0} base vectors, {options.Queries:N0} queries, {options.Dimensions} dims, {options.Clusters} clusters (spread {options.Spread.ToString(Invariant)}), M={options.M}, efConstruction={options.EfConstruction}, ef={string.Join(',', options.Efs)}");
        Log($".NET {Environment.Version}, {Environment.ProcessorCount} cores, Vector512 accelerated: {Vector512.IsHardwareAccelerated}, Vector256: {Vector256.IsHardwareAccelerated}");

        var watch = Stopwatch.StartNew();
        var (data, queries) = Generate(options);
        Log($"generated the vectors in {watch.Elapsed.TotalSeconds:F1} s");

        watch.Restart();
        var truth = GroundTruth(data, queries, options);
        Log($"exact top-{K} of every query by brute force ({Environment.ProcessorCount} threads) in {watch.Elapsed.TotalSeconds:F1} s");

        var dataPath = options.DataPath ?? Path.Combine(Path.GetTempPath(), $"vector-index-bench-{options.Count}x{options.Dimensions}-{options.Seed}.bin");
        WriteDataFile(dataPath, data, queries, truth, options);
        Log($"wrote {dataPath} ({new FileInfo(dataPath).Length / (1024.0 * 1024.0):F0} MiB)");

        var ours = RunOurs(data, queries, truth, options);
        var bruteForceQps = BruteForceQps(data, queries, options);
        Log($"exact brute force (TensorPrimitives.Dot, 1 thread): {bruteForceQps:F1} QPS");

        HnswlibResult? theirs = null;
        if (!options.SkipHnswlib)
        {
            theirs = RunHnswlib(dataPath, options);
        }

        if (options.DataPath is null)
        {
            File.Delete(dataPath);
        }

        Console.WriteLine();
        Console.WriteLine(Table(ours, theirs, bruteForceQps, options));
        return 0;
    }

    private static void Log(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    // ---------------------------------------------------------------- data

    /// <summary>
    /// Gaussian clusters on the unit sphere: random unit centres, each point = centre + N(0, spread²/d) per
    /// dimension, normalised; queries are drawn the same way (and are not in the base set).
    /// </summary>
    private static (float[] Data, float[] Queries) Generate(Options options)
    {
        var random = new Random(options.Seed);
        var dims = options.Dimensions;
        var centres = new float[options.Clusters * dims];
        for (var i = 0; i < centres.Length; i++)
        {
            centres[i] = Gaussian(random);
        }

        for (var c = 0; c < options.Clusters; c++)
        {
            Normalise(centres.AsSpan(c * dims, dims));
        }

        var sigma = options.Spread / MathF.Sqrt(dims);
        float[] Points(int count)
        {
            var points = new float[count * dims];
            for (var p = 0; p < count; p++)
            {
                var centre = centres.AsSpan(random.Next(options.Clusters) * dims, dims);
                var point = points.AsSpan(p * dims, dims);
                for (var j = 0; j < dims; j++)
                {
                    point[j] = centre[j] + (sigma * Gaussian(random));
                }

                Normalise(point);
            }

            return points;
        }

        return (Points(options.Count), Points(options.Queries));
    }

    private static float Gaussian(Random random) =>
        (float)(Math.Sqrt(-2.0 * Math.Log(1.0 - random.NextDouble())) * Math.Cos(2.0 * Math.PI * random.NextDouble()));

    private static void Normalise(Span<float> vector)
    {
        var norm = TensorPrimitives.Norm(vector);
        TensorPrimitives.Divide(vector, norm, vector);
    }

    private static int[] GroundTruth(float[] data, float[] queries, Options options)
    {
        var dims = options.Dimensions;
        var truth = new int[options.Queries * K];
        Parallel.For(0, options.Queries, q =>
        {
            Span<float> similarities = stackalloc float[K];
            ExactTopK(data, options.Count, dims, queries.AsSpan(q * dims, dims), truth.AsSpan(q * K, K), similarities);
        });
        return truth;
    }

    /// <summary>Exact top k by scanning every vector (k = destination length), best first.</summary>
    private static void ExactTopK(float[] data, int count, int dims, ReadOnlySpan<float> query, Span<int> ids, Span<float> similarities)
    {
        var k = ids.Length;
        var found = 0;
        for (var i = 0; i < count; i++)
        {
            var similarity = TensorPrimitives.Dot(data.AsSpan(i * dims, dims), query);
            if (found == k && similarity <= similarities[k - 1])
            {
                continue;
            }

            var position = found < k ? found++ : k - 1;
            while (position > 0 && similarities[position - 1] < similarity)
            {
                similarities[position] = similarities[position - 1];
                ids[position] = ids[position - 1];
                position--;
            }

            similarities[position] = similarity;
            ids[position] = i;
        }
    }

    private static void WriteDataFile(string path, float[] data, float[] queries, int[] truth, Options options)
    {
        using var file = File.Create(path);
        Span<int> header = [DataMagic, options.Count, options.Queries, options.Dimensions, K];
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("the data file is little endian");
        }

        file.Write(MemoryMarshal.AsBytes(header));
        file.Write(MemoryMarshal.AsBytes(data.AsSpan()));
        file.Write(MemoryMarshal.AsBytes(queries.AsSpan()));
        file.Write(MemoryMarshal.AsBytes(truth.AsSpan()));
    }

    // ---------------------------------------------------------------- ours

    private static OurResult RunOurs(float[] data, float[] queries, int[] truth, Options options)
    {
        var dims = options.Dimensions;
        SettleHeap();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        var rssBefore = ResidentBytes();

        var watch = Stopwatch.StartNew();
        var index = new HnswIndex(dims, options.M, options.EfConstruction, efSearch: options.Efs[0], seed: options.Seed, capacity: options.Count);
        var step = Math.Max(options.Count / 10, 1);
        for (var i = 0; i < options.Count; i++)
        {
            index.Add(data.AsSpan(i * dims, dims));
            if ((i + 1) % step == 0)
            {
                Log($"[ours] added {i + 1:N0} in {watch.Elapsed.TotalSeconds:F1} s");
            }
        }

        var buildSeconds = watch.Elapsed.TotalSeconds;
        var rssDelta = ResidentBytes() - rssBefore;
        SettleHeap();
        var heapDelta = GC.GetTotalMemory(forceFullCollection: true) - heapBefore;
        var exactBytes = index.MemoryBytes;
        Log($"[ours] built {options.Count:N0} vectors in {buildSeconds:F1} s; arrays {exactBytes / (double)options.Count:F0} B/vector, GC heap delta {heapDelta / (double)options.Count:F0} B/vector, RSS delta {rssDelta / (double)options.Count:F0} B/vector");

        var results = new List<EfResult>();
        var found = new int[options.Queries * K];
        foreach (var ef in options.Efs)
        {
            var best = double.MaxValue;
            for (var run = 0; run < options.Runs; run++)
            {
                watch.Restart();
                for (var q = 0; q < options.Queries; q++)
                {
                    var matches = index.Search(queries.AsSpan(q * dims, dims), K, ef);
                    for (var j = 0; j < matches.Count; j++)
                    {
                        found[(q * K) + j] = matches[j].Node;
                    }
                }

                best = Math.Min(best, watch.Elapsed.TotalSeconds);
            }

            var recall = Recall(found, truth, options.Queries);
            results.Add(new EfResult(ef, recall, options.Queries / best, best));
            Log($"[ours] ef={ef}: recall@{K} {recall:F4}, {options.Queries / best:F0} QPS");
        }

        GC.KeepAlive(index);
        return new OurResult(buildSeconds, exactBytes, heapDelta, rssDelta, results);
    }

    private static void SettleHeap()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    /// <summary>The process's resident set (VmRSS), the same figure the Python side reads for hnswlib.</summary>
    private static long ResidentBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], Invariant) * 1024;
            }
        }

        return 0;
    }

    private static double Recall(int[] found, int[] truth, int queries)
    {
        var hits = 0;
        for (var q = 0; q < queries; q++)
        {
            var expected = truth.AsSpan(q * K, K);
            foreach (var node in found.AsSpan(q * K, K))
            {
                if (expected.Contains(node))
                {
                    hits++;
                }
            }
        }

        return hits / (double)(queries * K);
    }

    private static double BruteForceQps(float[] data, float[] queries, Options options)
    {
        var dims = options.Dimensions;
        var measured = Math.Min(options.Queries, 200);
        Span<int> ids = stackalloc int[K];
        Span<float> similarities = stackalloc float[K];
        ExactTopK(data, options.Count, dims, queries.AsSpan(0, dims), ids, similarities); // warm-up
        var watch = Stopwatch.StartNew();
        for (var q = 0; q < measured; q++)
        {
            ExactTopK(data, options.Count, dims, queries.AsSpan(q * dims, dims), ids, similarities);
        }

        return measured / watch.Elapsed.TotalSeconds;
    }

    // ---------------------------------------------------------------- hnswlib

    private static HnswlibResult RunHnswlib(string dataPath, Options options)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "hnswlib_bench.py");
        var start = new ProcessStartInfo(options.Python)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            script, "--data", dataPath, "--m", options.M.ToString(Invariant), "--ef-construction", options.EfConstruction.ToString(Invariant),
            "--ef", string.Join(',', options.Efs), "--seed", options.Seed.ToString(Invariant), "--runs", options.Runs.ToString(Invariant),
        })
        {
            start.ArgumentList.Add(argument);
        }

        Log($"running {options.Python} {script} (hnswlib, 1 thread)");
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {options.Python}");
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{options.Python} {script} exited with {process.ExitCode}; is python3-hnswlib installed (apt-get install -y python3-hnswlib python3-numpy)?");
        }

        var json = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        return JsonSerializer.Deserialize<HnswlibResult>(json, SnakeCase)
            ?? throw new InvalidOperationException("hnswlib_bench.py printed no result");
    }

    // ---------------------------------------------------------------- report

    private static string Table(OurResult ours, HnswlibResult? theirs, double bruteForceQps, Options options)
    {
        var n = (double)options.Count;
        var text = new StringBuilder();
        void Row(string what, string our, string their, string ratio) =>
            text.Append(Invariant, $"| {what} | {our} | {their} | {ratio} |\n");
        string Ratio(double a, double? b) => b is > 0 ? (a / b.Value).ToString("F2", Invariant) + "×" : "–";

        text.Append(Invariant, $"{options.Count:N0} × {options.Dimensions}-dim clustered unit vectors ({options.Clusters} clusters), {options.Queries:N0} queries, k = {K}, M = {options.M}, efConstruction = {options.EfConstruction}, one thread; QPS best of {options.Runs} runs\n\n");
        text.Append(Invariant, $"| | ours (C# HnswIndex) | {theirs?.Library ?? "hnswlib (skipped)"} | ours / hnswlib |\n");
        text.Append("|---|---:|---:|---:|\n");
        Row("build time (s)", ours.BuildSeconds.ToString("F1", Invariant), theirs?.BuildSeconds.ToString("F1", Invariant) ?? "–", Ratio(ours.BuildSeconds, theirs?.BuildSeconds));
        Row("memory: process RSS growth during build (B/vector)", (ours.RssDelta / n).ToString("F0", Invariant), theirs is null ? "–" : (theirs.RssDeltaBytes / n).ToString("F0", Invariant), Ratio(ours.RssDelta, theirs?.RssDeltaBytes));
        Row("memory: index data (B/vector): ours = exact array bytes, hnswlib = save_index file size", (ours.ExactBytes / n).ToString("F0", Invariant), theirs is null ? "–" : (theirs.IndexFileSize / n).ToString("F0", Invariant), Ratio(ours.ExactBytes, theirs?.IndexFileSize));
        Row("memory: ours GC heap growth (B/vector)", (ours.HeapDelta / n).ToString("F0", Invariant), "", "");
        foreach (var mine in ours.Results)
        {
            var their = theirs?.Results.FirstOrDefault(r => r.Ef == mine.Ef);
            Row($"ef = {mine.Ef}: recall@10", mine.Recall.ToString("F4", Invariant), their?.Recall.ToString("F4", Invariant) ?? "–", "");
            Row($"ef = {mine.Ef}: QPS", mine.Qps.ToString("F0", Invariant), their?.Qps.ToString("F0", Invariant) ?? "–", Ratio(mine.Qps, their?.Qps));
        }

        var ourFirst = ours.Results.FirstOrDefault(r => r.Recall >= 0.95);
        var theirFirst = theirs?.Results.FirstOrDefault(r => r.Recall >= 0.95);
        string Describe(EfResult? r) => r is null ? "not reached" : string.Create(Invariant, $"ef {r.Ef}: {r.Qps:F0} QPS (recall {r.Recall:F4})");
        Row("smallest ef with recall@10 ≥ 0.95", Describe(ourFirst), theirs is null ? "–" : Describe(theirFirst), ourFirst is null ? "–" : Ratio(ourFirst.Qps, theirFirst?.Qps));
        Row("exact brute force, TensorPrimitives.Dot (QPS)", bruteForceQps.ToString("F1", Invariant), "", "");
        return text.ToString();
    }

    private sealed record EfResult(int Ef, double Recall, double Qps, double Seconds);

    private sealed record OurResult(double BuildSeconds, long ExactBytes, long HeapDelta, long RssDelta, List<EfResult> Results);

    private sealed record HnswlibResult(string Library, double BuildSeconds, long RssDeltaBytes, long IndexFileSize, List<EfResult> Results);
}

internal sealed class Options
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/VectorIndex [-- options]
          --count N             base vectors (default 100000)
          --queries N           query vectors (default 1000)
          --dims N              dimensions (default 768)
          --clusters N          Gaussian clusters (default 100)
          --spread X            noise norm relative to the unit cluster centre (default 1.0)
          --m N                 HNSW M (default 16)
          --ef-construction N   (default 200)
          --ef A,B,...          search ef values (default 32,64,128,256)
          --runs N              timed passes per ef, best kept (default 2)
          --seed N              data and level seed (default 100)
          --data PATH           keep the data file at PATH (default: a temp file, deleted after)
          --python PATH         Python with hnswlib (default /usr/bin/python3)
          --skip-hnswlib        only run our index
        """;

    public int Count { get; private set; } = 100_000;

    public int Queries { get; private set; } = 1_000;

    public int Dimensions { get; private set; } = 768;

    public int Clusters { get; private set; } = 100;

    public float Spread { get; private set; } = 1.0f;

    public int M { get; private set; } = 16;

    public int EfConstruction { get; private set; } = 200;

    public IReadOnlyList<int> Efs { get; private set; } = [32, 64, 128, 256];

    public int Runs { get; private set; } = 2;

    public int Seed { get; private set; } = 100;

    public string? DataPath { get; private set; }

    public string Python { get; private set; } = "/usr/bin/python3";

    public bool SkipHnswlib { get; private set; }

    public bool Help { get; private set; }

    public static Options Parse(string[] args)
    {
        var options = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"{args[i - 1]} needs a positive integer");
            switch (args[i])
            {
                case "--count": options.Count = Int(); break;
                case "--queries": options.Queries = Int(); break;
                case "--dims": options.Dimensions = Int(); break;
                case "--clusters": options.Clusters = Int(); break;
                case "--spread": options.Spread = float.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--m": options.M = Int(); break;
                case "--ef-construction": options.EfConstruction = Int(); break;
                case "--ef": options.Efs = [.. Next().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))]; break;
                case "--runs": options.Runs = Int(); break;
                case "--seed": options.Seed = Int(); break;
                case "--data": options.DataPath = Next(); break;
                case "--python": options.Python = Next(); break;
                case "--skip-hnswlib": options.SkipHnswlib = true; break;
                case "--help" or "-h": options.Help = true; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }

        return options;
    }
}
