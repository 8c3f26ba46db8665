using System.Globalization;
using System.Text;
using System.Text.Json;
using Dapr;
using Dapr.Client;
using Grpc.Core;
using PersistentAgents.Contracts;

namespace PersistentAgents.Memory.Dapr;

/// <summary>Which blob binding is behind <see cref="DaprComponents.EpisodicMemory"/>: their requests and replies differ.</summary>
public enum BlobFlavour
{
    /// <summary><c>bindings.aws.s3</c> (also MinIO and other S3-compatible stores).</summary>
    S3,

    /// <summary><c>bindings.azure.blobstorage</c> (also Azurite).</summary>
    AzureBlob,

    /// <summary><c>bindings.localstorage</c>: a folder on the sidecar's machine.</summary>
    LocalStorage,
}

/// <summary>
/// Episodic memory as one blob per interaction, <c>episodes/{tenant}/{agent}/{yyyy-MM-dd}/{interactionId}.json</c>,
/// through a Dapr blob output binding (operations <c>create</c>, <c>get</c>, <c>delete</c>, <c>list</c>).
/// Tenant, agent and interaction id must each be one plain path segment, as in the file store, so no name
/// reaches another agent's or tenant's blobs.
/// <para>
/// What differs by <see cref="BlobFlavour"/> (docs/architecture.md, 'Dapr facts'): the metadata key naming
/// the blob (S3 <c>key</c>, Azure <c>blobName</c>, localstorage <c>fileName</c>); <c>list</c> (S3 and Azure
/// take a JSON payload <c>{maxResults, prefix, marker}</c> and answer object listings with sizes,
/// localstorage takes a folder in <c>fileName</c> and answers absolute paths without sizes); and how a
/// payload survives <c>create</c>: all three unquote a payload that is a Go string literal, and localstorage
/// also base64-decodes one that happens to be valid base64. So localstorage always gets base64 (decoded back
/// to the exact bytes), S3 gets base64 with <c>decodeBase64: "true"</c>, and Azure gets the JSON as is,
/// quoted once more when it would otherwise be unquoted.
/// </para>
/// <para>
/// No blob binding applies retention: <see cref="DeleteBeforeAsync"/> lists <c>episodes/</c> and deletes the
/// blobs of older days (S3 lifecycle rules can do the same on the store's side). Localstorage lists no sizes:
/// its entries say 0 bytes and <see cref="UsageAsync"/> reads each episode to count them.
/// </para>
/// </summary>
public sealed class BlobEpisodeStore(DaprClient dapr, BlobFlavour flavour, string bindingName = DaprComponents.EpisodicMemory) : IEpisodeStore
{
    public const string Root = "episodes";
    public const string CreateOperation = "create";
    public const string GetOperation = "get";
    public const string DeleteOperation = "delete";
    public const string ListOperation = "list";

    private const string DayFormat = "yyyy-MM-dd";
    private const string Extension = ".json";
    private const int S3PageSize = 1000;
    private const int AzurePageSize = 5000;

    // What each binding says for a missing blob or folder (a missing component says "couldn't find").
    private static readonly string[] NotFoundMessages =
        ["NoSuchKey", "The specified key does not exist", "blob not found", "BlobNotFound", "file not found", "no such file or directory"];

    public BlobFlavour Flavour => flavour;

    /// <summary>The request metadata key that names the blob.</summary>
    public static string NameMetadataKey(BlobFlavour flavour) => flavour switch
    {
        BlobFlavour.S3 => "key",
        BlobFlavour.AzureBlob => "blobName",
        BlobFlavour.LocalStorage => "fileName",
        _ => throw new ArgumentOutOfRangeException(nameof(flavour), flavour, null),
    };

    public static string BlobName(AgentScope scope, string interactionId, DateOnly day) =>
        $"{AgentFolder(scope)}/{day.ToString(DayFormat, CultureInfo.InvariantCulture)}/{Segment(interactionId, nameof(interactionId))}{Extension}";

    public async Task<string> AppendAsync(AgentScope scope, string interactionId, DateTimeOffset at, string json, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(json);
        var name = BlobName(scope, interactionId, DateOnly.FromDateTime(at.UtcDateTime));
        var request = Request(CreateOperation, name);
        switch (flavour)
        {
            case BlobFlavour.LocalStorage:
                request.Data = Encoding.UTF8.GetBytes(Convert.ToBase64String(Encoding.UTF8.GetBytes(json)));
                break;
            case BlobFlavour.S3:
                request.Data = Encoding.UTF8.GetBytes(Convert.ToBase64String(Encoding.UTF8.GetBytes(json)));
                request.Metadata["decodeBase64"] = "true";
                break;
            default:
                request.Data = Encoding.UTF8.GetBytes(json.Length > 0 && json[0] is '"' or '\'' or '`' ? GoQuote(json) : json);
                request.Metadata["contentType"] = "application/json";
                break;
        }

        await dapr.InvokeBindingAsync(request, cancellationToken);
        return name;
    }

    public async Task<string?> GetAsync(AgentScope scope, string interactionId, DateOnly day, CancellationToken cancellationToken)
    {
        var bytes = await ReadAsync(BlobName(scope, interactionId, day), cancellationToken);
        return bytes is null ? null : Encoding.UTF8.GetString(bytes.Value.Span);
    }

    public async Task<IReadOnlyList<EpisodeEntry>> ListAsync(AgentScope scope, DateOnly firstDay, DateOnly lastDay, int limit, CancellationToken cancellationToken)
    {
        if (limit <= 0)
        {
            return [];
        }

        return (await ListEpisodesAsync(AgentFolder(scope), cancellationToken))
            .Where(e => e.Scope == scope && e.Day >= firstDay && e.Day <= lastDay)
            .OrderBy(e => e.Day)
            .ThenBy(e => e.InteractionId, StringComparer.Ordinal)
            .Take(limit)
            .Select(e => new EpisodeEntry(e.InteractionId, e.Day, e.Name, Math.Max(e.Bytes, 0)))
            .ToList();
    }

    public async Task<IReadOnlyList<AgentScope>> ListScopesAsync(CancellationToken cancellationToken) =>
        (await ListEpisodesAsync(Root, cancellationToken)).Select(e => e.Scope).Distinct().ToList();

    public async Task<long> DeleteBeforeAsync(DateOnly cutoff, CancellationToken cancellationToken)
    {
        long deleted = 0;
        foreach (var episode in (await ListEpisodesAsync(Root, cancellationToken)).Where(e => e.Day < cutoff))
        {
            deleted += await DeleteAsync(episode.Name, cancellationToken) ? 1 : 0;
        }

        return deleted;
    }

    public async Task<TierUsage> UsageAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        long items = 0, bytes = 0;
        foreach (var episode in (await ListEpisodesAsync(AgentFolder(scope), cancellationToken)).Where(e => e.Scope == scope))
        {
            var size = episode.Bytes;
            if (size < 0)
            {
                // Localstorage lists paths only; the size costs a read.
                var content = await ReadAsync(episode.Name, cancellationToken);
                if (content is null)
                {
                    continue;
                }

                size = content.Value.Length;
            }

            items++;
            bytes += size;
        }

        return new TierUsage(items, bytes);
    }

    public async Task<long> PurgeAsync(AgentScope scope, CancellationToken cancellationToken)
    {
        long deleted = 0;
        foreach (var episode in (await ListEpisodesAsync(AgentFolder(scope), cancellationToken)).Where(e => e.Scope == scope))
        {
            deleted += await DeleteAsync(episode.Name, cancellationToken) ? 1 : 0;
        }

        return deleted;
    }

    private BindingRequest Request(string operation, string? name = null)
    {
        var request = new BindingRequest(bindingName, operation);
        if (name is not null)
        {
            request.Metadata[NameMetadataKey(flavour)] = name;
        }

        return request;
    }

    private async Task<ReadOnlyMemory<byte>?> ReadAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return (await dapr.InvokeBindingAsync(Request(GetOperation, name), cancellationToken)).Data;
        }
        catch (DaprException e) when (IsNotFound(e))
        {
            return null;
        }
    }

    /// <returns>False when the blob was already gone (another sweeper or purge got there first).</returns>
    private async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await dapr.InvokeBindingAsync(Request(DeleteOperation, name), cancellationToken);
            return true;
        }
        catch (DaprException e) when (IsNotFound(e))
        {
            return false;
        }
    }

    /// <summary>Every well-formed episode blob under a folder (<c>episodes</c> or one agent's).</summary>
    private async Task<List<StoredEpisode>> ListEpisodesAsync(string folder, CancellationToken cancellationToken)
    {
        var episodes = new List<StoredEpisode>();
        await foreach (var (name, bytes) in ListBlobsAsync(folder, cancellationToken))
        {
            if (TryParse(name, bytes) is { } episode)
            {
                episodes.Add(episode);
            }
        }

        return episodes;
    }

    /// <summary>Names and sizes (-1 when the binding does not say) of the blobs under a folder, every page.</summary>
    private async IAsyncEnumerable<(string Name, long Bytes)> ListBlobsAsync(string folder, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        switch (flavour)
        {
            case BlobFlavour.LocalStorage:
            {
                var response = await ListFolderAsync(folder, cancellationToken);
                if (response is null || response.Data.IsEmpty)
                {
                    yield break;
                }

                using var document = JsonDocument.Parse(response.Data);
                if (document.RootElement.ValueKind != JsonValueKind.Array)
                {
                    yield break;
                }

                foreach (var path in document.RootElement.EnumerateArray())
                {
                    if (path.ValueKind == JsonValueKind.String)
                    {
                        yield return (path.GetString()!, -1);
                    }
                }

                break;
            }

            case BlobFlavour.S3:
            {
                var marker = "";
                while (true)
                {
                    using var document = await ListPageAsync(folder + "/", marker, S3PageSize, cancellationToken);
                    var root = document.RootElement;
                    string? lastKey = null;
                    if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("Contents", out var contents) && contents.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var item in contents.EnumerateArray())
                        {
                            if (item.TryGetProperty("Key", out var key) && key.ValueKind == JsonValueKind.String)
                            {
                                lastKey = key.GetString()!;
                                yield return (lastKey, item.TryGetProperty("Size", out var size) && size.ValueKind == JsonValueKind.Number ? size.GetInt64() : -1);
                            }
                        }
                    }

                    var truncated = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("IsTruncated", out var t) && t.ValueKind == JsonValueKind.True;

                    // S3 returns NextMarker only when a delimiter was given; otherwise the last key is the marker.
                    var next = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("NextMarker", out var n) && n.ValueKind == JsonValueKind.String && n.GetString()!.Length > 0
                        ? n.GetString()!
                        : lastKey;
                    if (!truncated || next is null || next == marker)
                    {
                        yield break;
                    }

                    marker = next;
                }
            }

            default:
            {
                var marker = "";
                while (true)
                {
                    var request = ListRequest(folder + "/", marker, AzurePageSize);
                    var response = await dapr.InvokeBindingAsync(request, cancellationToken);
                    var count = 0;
                    if (!response.Data.IsEmpty)
                    {
                        using var document = JsonDocument.Parse(response.Data);
                        if (document.RootElement.ValueKind == JsonValueKind.Array)
                        {
                            foreach (var item in document.RootElement.EnumerateArray())
                            {
                                if (AzureBlobName(item) is { } name)
                                {
                                    count++;
                                    yield return (name, AzureBlobSize(item));
                                }
                            }
                        }
                    }

                    // The Azure binding pages internally and hands back the service's continuation marker.
                    var next = response.Metadata.TryGetValue("marker", out var m) ? m : "";
                    if (string.IsNullOrEmpty(next) || next == marker || count == 0)
                    {
                        yield break;
                    }

                    marker = next;
                }
            }
        }
    }

    /// <returns>Null when the folder does not exist (yet): localstorage fails to list a missing folder.</returns>
    private async Task<BindingResponse?> ListFolderAsync(string folder, CancellationToken cancellationToken)
    {
        try
        {
            return await dapr.InvokeBindingAsync(Request(ListOperation, folder), cancellationToken);
        }
        catch (DaprException e) when (IsNotFound(e))
        {
            return null;
        }
    }

    private async Task<JsonDocument> ListPageAsync(string prefix, string marker, int pageSize, CancellationToken cancellationToken)
    {
        var response = await dapr.InvokeBindingAsync(ListRequest(prefix, marker, pageSize), cancellationToken);
        return JsonDocument.Parse(response.Data.IsEmpty ? "{}"u8.ToArray() : response.Data);
    }

    private BindingRequest ListRequest(string prefix, string marker, int pageSize)
    {
        var request = Request(ListOperation);
        request.Data = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["maxResults"] = pageSize,
            ["prefix"] = prefix,
            ["marker"] = marker,
        });
        return request;
    }

    /// <summary>The blob name of an Azure listing item: <c>Name</c> is a string, or in some SDK versions an object with <c>Content</c>.</summary>
    private static string? AzureBlobName(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("Name", out var name))
        {
            return null;
        }

        return name.ValueKind switch
        {
            JsonValueKind.String => name.GetString(),
            JsonValueKind.Object when name.TryGetProperty("Content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
            _ => null,
        };
    }

    private static long AzureBlobSize(JsonElement item)
    {
        if (item.TryGetProperty("Properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
        {
            foreach (var key in (ReadOnlySpan<string>)["ContentLength", "Content-Length"])
            {
                if (properties.TryGetProperty(key, out var length) && length.ValueKind == JsonValueKind.Number)
                {
                    return length.GetInt64();
                }
            }
        }

        return -1;
    }

    /// <summary>
    /// Reads an episode back from a listed name: its last five segments must be
    /// <c>episodes/{tenant}/{agent}/{day}/{id}.json</c> (localstorage lists absolute paths; only the tail is ours).
    /// </summary>
    private static StoredEpisode? TryParse(string listed, long bytes)
    {
        var segments = listed.Split('/', '\\');
        if (segments.Length < 5)
        {
            return null;
        }

        var tail = segments[^5..];
        if (tail[0] != Root
            || !IsSegment(tail[1]) || !IsSegment(tail[2])
            || !DateOnly.TryParseExact(tail[3], DayFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            || !tail[4].EndsWith(Extension, StringComparison.Ordinal))
        {
            return null;
        }

        var id = tail[4][..^Extension.Length];
        return IsSegment(id)
            ? new StoredEpisode(new AgentScope(tail[1], tail[2]), day, id, string.Join('/', tail), bytes)
            : null;
    }

    /// <summary>
    /// Whether a binding error says the blob or folder is missing. Dapr wraps binding errors in a generic
    /// status, so this reads the message each binding gives: S3 <c>NoSuchKey</c>, Azure <c>blob not found</c> /
    /// <c>BlobNotFound</c>, localstorage <c>file not found</c> or the OS's <c>no such file or directory</c>.
    /// </summary>
    public static bool IsNotFound(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is RpcException { StatusCode: StatusCode.NotFound })
            {
                return true;
            }

            var text = e is RpcException rpc ? rpc.Status.Detail : e.Message;
            if (NotFoundMessages.Any(m => text.Contains(m, StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A Go double-quoted string literal whose <c>strconv.Unquote</c> is exactly <paramref name="text"/>.</summary>
    public static string GoQuote(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var quoted = new StringBuilder(text.Length + 8).Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '\\': quoted.Append(@"\\"); break;
                case '"': quoted.Append("\\\""); break;
                case '\n': quoted.Append(@"\n"); break;
                case '\r': quoted.Append(@"\r"); break;
                case '\t': quoted.Append(@"\t"); break;
                case < ' ' or '\x7f': quoted.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}"); break;
                default: quoted.Append(c); break;
            }
        }

        return quoted.Append('"').ToString();
    }

    private static string AgentFolder(AgentScope scope) =>
        $"{Root}/{Segment(scope.Tenant, "tenant")}/{Segment(scope.Agent, "agent")}";

    private static bool IsSegment(string name) =>
        !string.IsNullOrEmpty(name) && name is not ("." or "..") && name.IndexOfAny(['/', '\\', '\0']) < 0;

    private static string Segment(string name, string what) =>
        IsSegment(name) ? name : throw new ArgumentException($"{what} '{name}' is not a plain folder name", what);

    private sealed record StoredEpisode(AgentScope Scope, DateOnly Day, string InteractionId, string Name, long Bytes);
}
