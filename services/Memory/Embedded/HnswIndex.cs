using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace PersistentAgents.Memory.Embedded;

/// <summary>
/// Approximate nearest neighbour search over unit-length float vectors by cosine similarity (the dot product),
/// with a hierarchical navigable small world graph (Malkov and Yashunin, "Efficient and robust approximate
/// nearest neighbor search using Hierarchical Navigable Small World graphs", 2016): levels drawn from a seedable
/// <see cref="Random"/> with multiplier 1/ln M, neighbours chosen by the paper's heuristic (algorithm 4, without
/// extending or keeping pruned candidates, as hnswlib does), M links per node on the upper layers and 2M on layer 0.
/// </summary>
/// <remarks>
/// <para>
/// Layout: node ids are dense (0, 1, 2 ...) in insertion order. All vectors live in one <c>float[]</c>, node
/// <c>n</c> at <c>n * Dimensions</c>; layer-0 links in one <c>int[]</c> of fixed blocks <c>[count, link × 2M]</c>;
/// upper-layer links (about one node in M has any) in one small <c>int[]</c> per such node; levels and deleted
/// flags in one byte each. The arrays grow by doubling unless a capacity is given up front.
/// </para>
/// <para>
/// Thread safety: any number of concurrent searches with one writer at a time. Writers (<see cref="Add"/>,
/// <see cref="Remove"/>, <see cref="TrimExcess"/>, <see cref="Save"/>) serialise on a lock; searches take no lock
/// at all, so a long insert never stalls them. That is safe because the writer only ever publishes states a reader
/// can walk: (1) growing copies into new arrays and publishes them with a volatile write before any node beyond the
/// old capacity exists, and never writes to the old arrays again, so a link a reader finds is always inside the
/// arrays it holds; (2) a new node's vector, level and own links are written, then a full fence, and only then do
/// links to it appear in other nodes' lists or does it become the entry point; (3) a link list is rewritten entry
/// by entry and its count written last; a reader racing with that sees a mix of old and new entries, every one a
/// fully written node, and clamps the count it reads. A search running during an insert may therefore miss the
/// node being inserted, which is the usual meaning of a concurrent read. A reader-writer lock was the alternative;
/// it would block every search for the whole of an insert (about a millisecond at efConstruction 200).
/// </para>
/// <para>
/// Searches reuse one scratch object per thread (visited marks with a generation counter, two heaps), so a search
/// allocates only its result list (nothing at all with the span overload); the per-thread visited array costs two
/// bytes per node of the largest index the thread has searched.
/// </para>
/// </remarks>
public sealed class HnswIndex
{
    private const uint FileMagic = 0x57534E48; // "HNSW" little endian
    private const int FileVersion = 1;
    private const uint EndMagic = 0x444E4548; // "HEND"
    private const int LevelCap = 31;
    private const int MinimumCapacity = 16;

    [ThreadStatic]
    private static HnswScratch? t_scratch;

    private readonly Lock _writeLock = new();
    private readonly int _dimensions;
    private readonly int _m;
    private readonly int _m0;
    private readonly int _efConstruction;
    private readonly int _seed;
    private readonly double _levelMultiplier;
    private readonly HnswScratch _writerScratch = new();
    private readonly int[][] _selectedPerLevel = new int[LevelCap + 1][];
    private readonly int[] _selectedCounts = new int[LevelCap + 1];
    private readonly int[] _reselected;
    private Random _random;
    private Storage _storage;
    private EntryPoint? _entry;
    private int _nodeCount;
    private int _liveCount;

    /// <param name="dimensions">Length of every vector.</param>
    /// <param name="m">Links per node on the upper layers (2M on layer 0).</param>
    /// <param name="efConstruction">Candidate list size while inserting.</param>
    /// <param name="efSearch">Default candidate list size for <see cref="Search(ReadOnlySpan{float}, int)"/>.</param>
    /// <param name="seed">Seed of the level generator, so a build is reproducible.</param>
    /// <param name="capacity">Nodes to allocate for up front (the arrays double when full).</param>
    public HnswIndex(int dimensions, int m = 16, int efConstruction = 200, int efSearch = 64, int seed = 42, int capacity = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(m, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(m, 1024);
        ArgumentOutOfRangeException.ThrowIfLessThan(efConstruction, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(efSearch, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _dimensions = dimensions;
        _m = m;
        _m0 = 2 * m;
        _efConstruction = Math.Max(efConstruction, m);
        EfSearch = efSearch;
        _seed = seed;
        _random = new Random(seed);
        _levelMultiplier = 1.0 / Math.Log(m);
        _storage = new Storage(Math.Max(capacity, MinimumCapacity), dimensions, _m0);
        _reselected = new int[_m0 + 1];
        _writerScratch.EnsureSortedCapacity(_m0 + 1);
    }

    public int Dimensions => _dimensions;

    public int M => _m;

    public int EfConstruction => _efConstruction;

    /// <summary>Candidate list size used when a search does not name one.</summary>
    public int EfSearch { get; init; }

    /// <summary>Live (not removed) nodes.</summary>
    public int Count => Volatile.Read(ref _liveCount);

    /// <summary>Every node ever added, removed ones included: ids run from 0 to NodeCount - 1.</summary>
    public int NodeCount => Volatile.Read(ref _nodeCount);

    /// <summary>Nodes the arrays hold room for.</summary>
    public int Capacity => Volatile.Read(ref _storage).Capacity;

    /// <summary>Bytes held by the index's arrays, object headers included (exact, not an estimate of the heap).</summary>
    public long MemoryBytes
    {
        get
        {
            lock (_writeLock)
            {
                return _storage.MemoryBytes();
            }
        }
    }

    public bool IsDeleted(int node)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(node);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, NodeCount);
        var storage = Volatile.Read(ref _storage); // read after the count: it holds every counted node
        return Volatile.Read(ref storage.Deleted[node]) != 0;
    }

    /// <summary>Adds a unit-length vector and returns its node id (ids are dense, in insertion order).</summary>
    public int Add(ReadOnlySpan<float> vector)
    {
        if (vector.Length != _dimensions)
        {
            throw new ArgumentException($"expected {_dimensions} dimensions, got {vector.Length}", nameof(vector));
        }

        if (!float.IsFinite(TensorPrimitives.Dot(vector, vector)))
        {
            throw new ArgumentException("the vector has a NaN or infinite component", nameof(vector));
        }

        lock (_writeLock)
        {
            var node = _nodeCount;
            if (node == _storage.Capacity)
            {
                Grow();
            }

            var storage = _storage;
            var dimensions = _dimensions;
            vector.CopyTo(storage.Vectors.AsSpan(node * dimensions, dimensions));
            var level = RandomLevel();
            storage.Levels[node] = (byte)level;
            if (level > 0)
            {
                storage.Upper[node] = new int[level * (_m + 1)];
            }

            var entry = _entry;
            if (entry is null)
            {
                Interlocked.MemoryBarrier();
                Volatile.Write(ref _nodeCount, node + 1);
                Volatile.Write(ref _liveCount, _liveCount + 1);
                Volatile.Write(ref _entry, new EntryPoint(node, level));
                return node;
            }

            ref var query = ref storage.Vectors[node * dimensions];
            var current = entry.Node;
            var currentSimilarity = HnswDot.Dot(ref query, ref VectorOf(storage, current), dimensions);
            for (var layer = entry.Level; layer > level; layer--)
            {
                current = GreedyClimb(storage, ref query, current, ref currentSimilarity, layer);
            }

            // Find and write the new node's own links on every layer it shares with the graph. Searching layer
            // L - 1 never reads layer L, so linking back into the graph can wait until all layers are done.
            var topShared = Math.Min(level, entry.Level);
            var scratch = _writerScratch;
            for (var layer = topShared; layer >= 0; layer--)
            {
                SearchLayer(storage, ref query, current, currentSimilarity, layer, _efConstruction, filter: null, skipDeleted: false, scratch);
                var found = scratch.DrainResultsDescending();
                var selected = _selectedPerLevel[layer] ??= new int[_m0 + 1];
                var count = SelectNeighbours(storage, scratch.SortedNodes.AsSpan(0, found), scratch.SortedSimilarities.AsSpan(0, found), _m, selected);
                _selectedCounts[layer] = count;
                var (links, offset) = ListOf(storage, node, layer);
                selected.AsSpan(0, count).CopyTo(links.AsSpan(offset + 1, count));
                links[offset] = count;
                current = scratch.SortedNodes[0];
                currentSimilarity = scratch.SortedSimilarities[0];
            }

            // Publish the node's vector and lists before any other node links to it (and count it first, so a
            // search never returns a node id beyond NodeCount).
            Interlocked.MemoryBarrier();
            Volatile.Write(ref _nodeCount, node + 1);
            Volatile.Write(ref _liveCount, _liveCount + 1);
            for (var layer = topShared; layer >= 0; layer--)
            {
                var selected = _selectedPerLevel[layer];
                for (var i = 0; i < _selectedCounts[layer]; i++)
                {
                    LinkBack(storage, selected[i], node, layer);
                }
            }

            if (level > entry.Level)
            {
                Volatile.Write(ref _entry, new EntryPoint(node, level));
            }

            return node;
        }
    }

    /// <summary>Marks a node deleted: never returned again, but still used to navigate the graph. Idempotent.</summary>
    public void Remove(int node)
    {
        lock (_writeLock)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(node);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, _nodeCount);
            ref var flag = ref _storage.Deleted[node];
            if (flag == 0)
            {
                Volatile.Write(ref flag, 1);
                Volatile.Write(ref _liveCount, _liveCount - 1);
            }
        }
    }

    /// <summary>Shrinks the arrays to the nodes present (for an index that is done growing).</summary>
    public void TrimExcess()
    {
        lock (_writeLock)
        {
            var capacity = Math.Max(_nodeCount, MinimumCapacity);
            if (capacity < _storage.Capacity)
            {
                Volatile.Write(ref _storage, _storage.CopyTo(capacity, _nodeCount));
            }
        }
    }

    /// <summary>The <paramref name="k"/> nodes most similar to <paramref name="query"/>, best first, with <see cref="EfSearch"/>.</summary>
    public IReadOnlyList<(int Node, float Similarity)> Search(ReadOnlySpan<float> query, int k) =>
        Search(query, k, EfSearch);

    /// <summary>
    /// The <paramref name="k"/> nodes most similar to <paramref name="query"/>, best first: live nodes the
    /// <paramref name="filter"/> (if any) accepts, with similarity at least <paramref name="minSimilarity"/>.
    /// </summary>
    /// <param name="ef">Candidate list size (raised to <paramref name="k"/>): larger is slower and more accurate.</param>
    /// <param name="filter">
    /// Which nodes may be returned. Rejected and deleted nodes still guide the walk; the search goes on until it
    /// holds <paramref name="ef"/> accepted nodes or runs out of graph, so a selective filter costs more, not recall.
    /// </param>
    public IReadOnlyList<(int Node, float Similarity)> Search(ReadOnlySpan<float> query, int k, int ef, Func<int, bool>? filter = null, float minSimilarity = float.MinValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (k == 0)
        {
            return [];
        }

        var buffer = new (int Node, float Similarity)[k];
        var found = Search(query, buffer, ef, filter, minSimilarity);
        return found == k ? buffer : buffer[..found];
    }

    /// <summary>As the list overload, into <paramref name="destination"/> (k is its length); returns how many were written.</summary>
    public int Search(ReadOnlySpan<float> query, Span<(int Node, float Similarity)> destination, int ef, Func<int, bool>? filter = null, float minSimilarity = float.MinValue)
    {
        if (query.Length != _dimensions)
        {
            throw new ArgumentException($"expected {_dimensions} dimensions, got {query.Length}", nameof(query));
        }

        var k = destination.Length;
        var entry = Volatile.Read(ref _entry);
        if (k == 0 || entry is null)
        {
            return 0;
        }

        // Entry first, then storage: the storage read is at least as new as the entry point's node.
        var storage = Volatile.Read(ref _storage);
        var scratch = t_scratch ?? new HnswScratch();
        t_scratch = null; // a filter that searches again on this thread gets its own scratch
        try
        {
            ref var q = ref MemoryMarshal.GetReference(query);
            var current = entry.Node;
            var currentSimilarity = HnswDot.Dot(ref q, ref VectorOf(storage, current), _dimensions);
            for (var layer = entry.Level; layer > 0; layer--)
            {
                current = GreedyClimb(storage, ref q, current, ref currentSimilarity, layer);
            }

            SearchLayer(storage, ref q, current, currentSimilarity, 0, Math.Max(ef, k), filter, skipDeleted: true, scratch);
            var found = scratch.DrainResultsDescending();
            var written = 0;
            for (var i = 0; i < found && written < k; i++)
            {
                var similarity = scratch.SortedSimilarities[i];
                if (similarity < minSimilarity)
                {
                    break;
                }

                destination[written++] = (scratch.SortedNodes[i], similarity);
            }

            return written;
        }
        finally
        {
            t_scratch = scratch;
        }
    }

    /// <summary>
    /// Writes the whole graph (vectors, levels, deleted flags, every link list) so a restart loads it instead of
    /// rebuilding. Little-endian binary with a magic number and version; link lists are stored at their length.
    /// </summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        lock (_writeLock)
        {
            var storage = _storage;
            var nodes = _nodeCount;
            var entry = _entry;
            var header = new int[] { (int)FileMagic, FileVersion, _dimensions, _m, _efConstruction, EfSearch, _seed, nodes, _liveCount, entry?.Node ?? -1, entry?.Level ?? -1 };
            WriteInts(stream, header);
            stream.Write(storage.Levels, 0, nodes);
            stream.Write(storage.Deleted, 0, nodes);
            WriteFloats(stream, storage.Vectors.AsSpan(0, nodes * _dimensions));

            var buffer = new List<int>(capacity: 64 * 1024);
            var stride0 = _m0 + 1;
            for (var node = 0; node < nodes; node++)
            {
                var count = storage.Links0[node * stride0];
                buffer.AddRange(storage.Links0.AsSpan(node * stride0, count + 1));
                var upper = storage.Upper[node];
                for (var layer = 1; layer <= storage.Levels[node]; layer++)
                {
                    var offset = (layer - 1) * (_m + 1);
                    buffer.AddRange(upper.AsSpan(offset, upper![offset] + 1));
                }

                if (buffer.Count >= 60 * 1024)
                {
                    WriteInts(stream, CollectionsMarshal.AsSpan(buffer));
                    buffer.Clear();
                }
            }

            WriteInts(stream, CollectionsMarshal.AsSpan(buffer));
            WriteInts(stream, [(int)EndMagic]);
        }
    }

    /// <summary>Reads an index written by <see cref="Save"/>; throws <see cref="InvalidDataException"/> on anything malformed.</summary>
    public static HnswIndex Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            return Read(stream);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("HNSW index file is truncated", e);
        }
    }

    private static HnswIndex Read(Stream stream)
    {
        var header = new int[11];
        ReadInts(stream, header);
        if ((uint)header[0] != FileMagic)
        {
            throw new InvalidDataException("not an HNSW index file");
        }

        if (header[1] != FileVersion)
        {
            throw new InvalidDataException($"HNSW index file version {header[1]} is not supported (expected {FileVersion})");
        }

        var (dimensions, m, efConstruction, efSearch, seed) = (header[2], header[3], header[4], header[5], header[6]);
        var (nodes, live, entryNode, entryLevel) = (header[7], header[8], header[9], header[10]);
        if (dimensions < 1 || m < 2 || m > 1024 || efConstruction < 1 || efSearch < 1 || nodes < 0 || live < 0 || live > nodes
            || (long)nodes * dimensions > Array.MaxLength || (nodes == 0) != (entryNode == -1)
            || (nodes > 0 && (entryNode < 0 || entryNode >= nodes || entryLevel < 0 || entryLevel > LevelCap)))
        {
            throw new InvalidDataException("HNSW index file header is inconsistent");
        }

        // Levels continue from a seed derived from the saved one and the node count: deterministic, though not
        // the sequence an index that was never saved would have drawn.
        var index = new HnswIndex(dimensions, m, efConstruction, efSearch, seed, nodes)
        {
            _random = new Random(unchecked((seed * -1640531535) ^ nodes)),
        };
        var storage = index._storage;
        stream.ReadExactly(storage.Levels, 0, nodes);
        stream.ReadExactly(storage.Deleted, 0, nodes);
        ReadFloats(stream, storage.Vectors.AsSpan(0, nodes * dimensions));

        var deleted = 0;
        var stride0 = index._m0 + 1;
        var strideUpper = m + 1;
        Span<int> one = stackalloc int[1];
        for (var node = 0; node < nodes; node++)
        {
            var level = storage.Levels[node];
            if (level > LevelCap || level > entryLevel || storage.Deleted[node] > 1)
            {
                throw new InvalidDataException($"HNSW node {node} has an invalid level or flag");
            }

            deleted += storage.Deleted[node];
            ReadList(stream, storage.Links0.AsSpan(node * stride0, stride0), nodes, one);
            if (level > 0)
            {
                var upper = storage.Upper[node] = new int[level * strideUpper];
                for (var layer = 1; layer <= level; layer++)
                {
                    ReadList(stream, upper.AsSpan((layer - 1) * strideUpper, strideUpper), nodes, one);
                }
            }
        }

        ReadInts(stream, one);
        if ((uint)one[0] != EndMagic || deleted != nodes - live || (nodes > 0 && storage.Levels[entryNode] != entryLevel))
        {
            throw new InvalidDataException("HNSW index file is truncated or inconsistent");
        }

        index._nodeCount = nodes;
        index._liveCount = live;
        index._entry = nodes > 0 ? new EntryPoint(entryNode, entryLevel) : null;
        return index;
    }

    private static void ReadList(Stream stream, Span<int> list, int nodes, Span<int> one)
    {
        ReadInts(stream, one);
        var count = one[0];
        if (count < 0 || count > list.Length - 1)
        {
            throw new InvalidDataException("HNSW link list is longer than the graph allows");
        }

        list[0] = count;
        var links = list.Slice(1, count);
        ReadInts(stream, links);
        foreach (var link in links)
        {
            if ((uint)link >= (uint)nodes)
            {
                throw new InvalidDataException("HNSW link points outside the graph");
            }
        }
    }

    private static void WriteInts(Stream stream, ReadOnlySpan<int> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(values));
            return;
        }

        var swapped = new int[values.Length];
        BinaryPrimitives.ReverseEndianness(values, swapped);
        stream.Write(MemoryMarshal.AsBytes(swapped.AsSpan()));
    }

    private static void WriteFloats(Stream stream, ReadOnlySpan<float> values) => WriteInts(stream, MemoryMarshal.Cast<float, int>(values));

    private static void ReadInts(Stream stream, Span<int> values)
    {
        stream.ReadExactly(MemoryMarshal.AsBytes(values));
        if (!BitConverter.IsLittleEndian)
        {
            BinaryPrimitives.ReverseEndianness(values, values);
        }
    }

    private static void ReadFloats(Stream stream, Span<float> values) => ReadInts(stream, MemoryMarshal.Cast<float, int>(values));

    private int RandomLevel()
    {
        var level = (int)(-Math.Log(1.0 - _random.NextDouble()) * _levelMultiplier);
        return Math.Min(level, LevelCap);
    }

    private void Grow()
    {
        var current = _storage;
        var limit = (int)Math.Min(Array.MaxLength / (long)_dimensions, Array.MaxLength / (long)(_m0 + 1));
        if (current.Capacity >= limit)
        {
            throw new InvalidOperationException($"the index is full: {limit} vectors of {_dimensions} dimensions fill the largest array .NET allows");
        }

        var capacity = (int)Math.Min(Math.Max(current.Capacity * 2L, MinimumCapacity), limit);
        Volatile.Write(ref _storage, current.CopyTo(capacity, _nodeCount));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref float VectorOf(Storage storage, int node) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(storage.Vectors), (nint)node * _dimensions);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private (int[] Links, int Offset) ListOf(Storage storage, int node, int layer) =>
        layer == 0 ? (storage.Links0, node * (_m0 + 1)) : (storage.Upper[node]!, (layer - 1) * (_m + 1));

    /// <summary>Greedy walk on one upper layer: move to the most similar neighbour until none is better.</summary>
    private int GreedyClimb(Storage storage, ref float query, int current, ref float currentSimilarity, int layer)
    {
        var stride = _m + 1;
        var offset = (layer - 1) * stride;
        var capacity = (uint)storage.Capacity;
        bool changed;
        do
        {
            changed = false;
            var links = storage.Upper[current];
            if (links is null || links.Length < offset + stride)
            {
                break; // a node whose upper lists are not published yet: stay here
            }

            var count = Math.Min(Volatile.Read(ref links[offset]), _m);
            for (var i = 1; i <= count; i++)
            {
                var candidate = links[offset + i];
                if ((uint)candidate >= capacity)
                {
                    continue;
                }

                var similarity = HnswDot.Dot(ref query, ref VectorOf(storage, candidate), _dimensions);
                if (similarity > currentSimilarity)
                {
                    currentSimilarity = similarity;
                    current = candidate;
                    changed = true;
                }
            }
        }
        while (changed);

        return current;
    }

    /// <summary>
    /// Best-first search of one layer from one entry node (the paper's algorithm 2), leaving the best <paramref name="ef"/>
    /// accepted nodes in <c>scratch.Results</c>. Every reachable node may be expanded; only accepted ones count as results.
    /// </summary>
    private void SearchLayer(Storage storage, ref float query, int entry, float entrySimilarity, int layer, int ef, Func<int, bool>? filter, bool skipDeleted, HnswScratch scratch)
    {
        scratch.BeginSearch(storage.Capacity);
        var visited = scratch.Visited;
        var generation = scratch.Generation;
        var candidates = scratch.Candidates;
        var results = scratch.Results;
        var deleted = storage.Deleted;
        var filtering = skipDeleted || filter is not null;
        var capacity = (uint)storage.Capacity;
        var dimensions = _dimensions;
        ref var vectors = ref MemoryMarshal.GetArrayDataReference(storage.Vectors);
        var stride = layer == 0 ? _m0 + 1 : _m + 1;
        var maxLinks = stride - 1;
        var upperOffset = (layer - 1) * stride;
        var batch = scratch.Batch(maxLinks);
        var touched = 0f;

        visited[entry] = generation;
        candidates.Push(-entrySimilarity, entry);
        if (!filtering || Accepts(entry, deleted, skipDeleted, filter))
        {
            results.Push(entrySimilarity, entry);
        }

        while (candidates.Count > 0)
        {
            var similarity = -candidates.TopKey;
            if (results.Count >= ef && similarity < results.TopKey)
            {
                break;
            }

            var node = candidates.TopNode;
            candidates.Pop();
            int[]? links;
            int offset;
            if (layer == 0)
            {
                links = storage.Links0;
                offset = node * stride;
            }
            else
            {
                links = storage.Upper[node];
                offset = upperOffset;
                if (links is null || links.Length < offset + stride)
                {
                    continue;
                }
            }

            // Gather the unvisited neighbours first and read the first cache line of each of their vectors: the
            // loads go out together (a prefetch without unsafe code), then the dot products find them arriving.
            var count = Math.Min(Volatile.Read(ref links[offset]), maxLinks);
            var pending = 0;
            for (var i = 1; i <= count; i++)
            {
                var neighbour = links[offset + i];
                if ((uint)neighbour >= capacity || visited[neighbour] == generation)
                {
                    continue;
                }

                visited[neighbour] = generation;
                batch[pending++] = neighbour;
                touched += Unsafe.Add(ref vectors, (nint)neighbour * dimensions);
            }

            for (var i = 0; i < pending; i++)
            {
                var neighbour = batch[i];
                var neighbourSimilarity = HnswDot.Dot(ref query, ref Unsafe.Add(ref vectors, (nint)neighbour * dimensions), dimensions);
                if (results.Count < ef || neighbourSimilarity > results.TopKey)
                {
                    candidates.Push(-neighbourSimilarity, neighbour);
                    if (!filtering || Accepts(neighbour, deleted, skipDeleted, filter))
                    {
                        if (results.Count < ef)
                        {
                            results.Push(neighbourSimilarity, neighbour);
                        }
                        else
                        {
                            results.ReplaceTop(neighbourSimilarity, neighbour);
                        }
                    }
                }
            }
        }

        scratch.Sink = touched; // keeps the touching loads from being optimised away
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Accepts(int node, byte[] deleted, bool skipDeleted, Func<int, bool>? filter) =>
        (!skipDeleted || Volatile.Read(ref deleted[node]) == 0) && (filter is null || filter(node));

    /// <summary>
    /// The paper's neighbour selection heuristic: walking candidates from most to least similar to the base, keep a
    /// candidate only if it is more similar to the base than to every candidate kept so far (so links spread out in
    /// different directions). Fewer candidates than <paramref name="max"/> are all kept, as in hnswlib.
    /// </summary>
    private int SelectNeighbours(Storage storage, ReadOnlySpan<int> candidates, ReadOnlySpan<float> similarities, int max, Span<int> selected)
    {
        if (candidates.Length < max)
        {
            candidates.CopyTo(selected);
            return candidates.Length;
        }

        var count = 0;
        for (var i = 0; i < candidates.Length && count < max; i++)
        {
            var candidate = candidates[i];
            ref var candidateVector = ref VectorOf(storage, candidate);
            var keep = true;
            for (var j = 0; j < count; j++)
            {
                if (HnswDot.Dot(ref candidateVector, ref VectorOf(storage, selected[j]), _dimensions) > similarities[i])
                {
                    keep = false;
                    break;
                }
            }

            if (keep)
            {
                selected[count++] = candidate;
            }
        }

        return count;
    }

    /// <summary>Adds <paramref name="node"/> to <paramref name="neighbour"/>'s list on a layer, re-selecting by the heuristic when full.</summary>
    private void LinkBack(Storage storage, int neighbour, int node, int layer)
    {
        var (links, offset) = ListOf(storage, neighbour, layer);
        var max = layer == 0 ? _m0 : _m;
        var count = links[offset];
        if (count < max)
        {
            links[offset + 1 + count] = node;
            Volatile.Write(ref links[offset], count + 1);
            return;
        }

        var scratch = _writerScratch;
        var candidates = scratch.SortedNodes.AsSpan(0, count + 1);
        var similarities = scratch.SortedSimilarities.AsSpan(0, count + 1);
        ref var neighbourVector = ref VectorOf(storage, neighbour);
        for (var i = 0; i < count; i++)
        {
            candidates[i] = links[offset + 1 + i];
        }

        candidates[count] = node;
        for (var i = 0; i <= count; i++)
        {
            // Negated so the ascending sort puts the most similar first.
            similarities[i] = -HnswDot.Dot(ref neighbourVector, ref VectorOf(storage, candidates[i]), _dimensions);
        }

        similarities.Sort(candidates);
        for (var i = 0; i <= count; i++)
        {
            similarities[i] = -similarities[i];
        }

        var selected = _reselected;
        var kept = SelectNeighbours(storage, candidates, similarities, max, selected);
        for (var i = 0; i < kept; i++)
        {
            Volatile.Write(ref links[offset + 1 + i], selected[i]);
        }

        Volatile.Write(ref links[offset], kept);
    }

    private sealed record EntryPoint(int Node, int Level);

    /// <summary>The arrays of one capacity. Replaced, never resized, so a reader holding one sees a consistent layout.</summary>
    private sealed class Storage
    {
        private readonly int _dimensions;
        private readonly int _m0;

        public Storage(int capacity, int dimensions, int m0)
        {
            Capacity = capacity;
            _dimensions = dimensions;
            _m0 = m0;
            Vectors = new float[(long)capacity * dimensions];
            Links0 = new int[(long)capacity * (m0 + 1)];
            Upper = new int[]?[capacity];
            Levels = new byte[capacity];
            Deleted = new byte[capacity];
        }

        public int Capacity { get; }

        public float[] Vectors { get; }

        public int[] Links0 { get; }

        public int[]?[] Upper { get; }

        public byte[] Levels { get; }

        public byte[] Deleted { get; }

        public Storage CopyTo(int capacity, int nodes)
        {
            var copy = new Storage(capacity, _dimensions, _m0);
            Array.Copy(Vectors, copy.Vectors, (long)nodes * _dimensions);
            Array.Copy(Links0, copy.Links0, (long)nodes * (_m0 + 1));
            Array.Copy(Upper, copy.Upper, nodes);
            Array.Copy(Levels, copy.Levels, nodes);
            Array.Copy(Deleted, copy.Deleted, nodes);
            return copy;
        }

        public long MemoryBytes()
        {
            const int ArrayHeader = 24; // object header, method table pointer, length (64-bit runtime)
            var bytes = (5L * ArrayHeader) + (Vectors.LongLength * sizeof(float)) + (Links0.LongLength * sizeof(int))
                + (Upper.LongLength * IntPtr.Size) + Levels.LongLength + Deleted.LongLength;
            foreach (var upper in Upper)
            {
                if (upper is not null)
                {
                    bytes += ArrayHeader + (upper.LongLength * sizeof(int));
                }
            }

            return bytes;
        }
    }
}
