using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using PersistentAgents.Memory.Dapr;
using Autogen = Dapr.Client.Autogen.Grpc.v1;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The double's blob bindings, in memory, each answering as its Dapr binding does (read from
/// components-contrib): <c>bindings.aws.s3</c> (metadata <c>key</c>, payload unquoted then base64-decoded when
/// <c>decodeBase64</c> is true, <c>list</c> answering S3's ListObjects output with <c>IsTruncated</c> and no
/// <c>NextMarker</c> without a delimiter), <c>bindings.azure.blobstorage</c> (metadata <c>blobName</c>, payload
/// unquoted, <c>list</c> answering an array of blob items and the continuation in the <c>marker</c> response
/// metadata) and <c>bindings.localstorage</c> (metadata <c>fileName</c>, payload unquoted then base64-decoded
/// whenever it is valid base64, <c>list</c> of a folder answering absolute paths, failing on a missing folder;
/// folders stay after their files are deleted). Missing blobs fail as each binding fails.
/// </summary>
public sealed class BlobBinding(BlobFlavour flavour, string localRoot = "/var/lib/dapr/episode-blobs", int maxPageSize = 1000) : IBindingBackend
{
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _folders = new(StringComparer.Ordinal);

    public BlobFlavour Flavour => flavour;

    public string LocalRoot => localRoot;

    /// <summary>The stored bytes of a blob (relative name), or null.</summary>
    public byte[]? Blob(string name)
    {
        lock (_lock)
        {
            return _blobs.TryGetValue(name, out var bytes) ? bytes : null;
        }
    }

    public IReadOnlyList<string> Names
    {
        get
        {
            lock (_lock)
            {
                return [.. _blobs.Keys];
            }
        }
    }

    public Task<Autogen.InvokeBindingResponse> InvokeAsync(Autogen.InvokeBindingRequest request, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var response = request.Operation switch
            {
                "create" => Create(request),
                "get" => Get(request),
                "delete" => Delete(request),
                "list" => List(request),
                _ => throw new BindingFailedException($"unsupported operation {request.Operation}"),
            };
            return Task.FromResult(response);
        }
    }

    private string NameKey => BlobEpisodeStore.NameMetadataKey(flavour);

    private string? NameOf(Autogen.InvokeBindingRequest request) =>
        request.Metadata.TryGetValue(NameKey, out var name) && name.Length > 0 ? name : null;

    private Autogen.InvokeBindingResponse Create(Autogen.InvokeBindingRequest request)
    {
        var name = NameOf(request) ?? Guid.NewGuid().ToString();
        var data = request.Data.ToByteArray();
        if (GoUnquote(Encoding.UTF8.GetString(data)) is { } unquoted)
        {
            data = Encoding.UTF8.GetBytes(unquoted);
        }

        var response = new Autogen.InvokeBindingResponse();
        switch (flavour)
        {
            case BlobFlavour.S3:
                if (request.Metadata.TryGetValue("decodeBase64", out var decode) && decode == "true")
                {
                    data = StrictBase64(Encoding.UTF8.GetString(data)) ?? throw new BindingFailedException("s3 binding error. decode : illegal base64 data");
                }

                response.Data = Json(new { location = $"http://127.0.0.1:9000/agent-episodes/{name}", versionID = (string?)null });
                break;
            case BlobFlavour.AzureBlob:
                response.Data = Json(new { blobURL = $"http://127.0.0.1:10000/devstoreaccount1/agent-episodes/{name}", blobName = name });
                response.Metadata["blobName"] = name;
                break;
            default:
                name = Clean(name);
                if (StrictBase64(Encoding.UTF8.GetString(data)) is { } decoded)
                {
                    data = decoded;
                }

                for (var folder = Parent(name); folder.Length > 0; folder = Parent(folder))
                {
                    _folders.Add(folder);
                }

                response.Data = Json(new { fileName = name });
                break;
        }

        _blobs[name] = data;
        return response;
    }

    private Autogen.InvokeBindingResponse Get(Autogen.InvokeBindingRequest request)
    {
        var name = NameOf(request) ?? throw new BindingFailedException(flavour switch
        {
            BlobFlavour.S3 => "s3 binding error: can't read key value",
            BlobFlavour.AzureBlob => "blobName is a required attribute",
            _ => "error opening path: is a directory",
        });
        if (flavour == BlobFlavour.LocalStorage)
        {
            name = Clean(name);
        }

        if (!_blobs.TryGetValue(name, out var data))
        {
            throw new BindingFailedException(flavour switch
            {
                BlobFlavour.S3 => $"s3 binding error: error downloading S3 object: NoSuchKey: The specified key does not exist.\n\tstatus code: 404",
                BlobFlavour.AzureBlob => "blob not found",
                _ => $"file not found: {Absolute(name)}",
            });
        }

        return new Autogen.InvokeBindingResponse { Data = ByteString.CopyFrom(data) };
    }

    private Autogen.InvokeBindingResponse Delete(Autogen.InvokeBindingRequest request)
    {
        var name = NameOf(request) ?? throw new BindingFailedException("a blob name is required");
        if (flavour == BlobFlavour.LocalStorage)
        {
            name = Clean(name);
        }

        if (!_blobs.Remove(name))
        {
            switch (flavour)
            {
                case BlobFlavour.S3:
                    break; // S3 deletes idempotently
                case BlobFlavour.AzureBlob:
                    throw new BindingFailedException("blob not found");
                default:
                    throw new BindingFailedException($"error deleting file {Absolute(name)}: remove {Absolute(name)}: no such file or directory");
            }
        }

        return new Autogen.InvokeBindingResponse();
    }

    private Autogen.InvokeBindingResponse List(Autogen.InvokeBindingRequest request)
    {
        if (flavour == BlobFlavour.LocalStorage)
        {
            var folder = Clean(NameOf(request) ?? "");
            if (folder.Length > 0 && !_folders.Contains(folder))
            {
                throw new BindingFailedException(_blobs.ContainsKey(folder)
                    ? $"unable to list files as the file specified is not a directory: {Absolute(folder)}"
                    : $"error getting stats for path {Absolute(folder)}: stat {Absolute(folder)}: no such file or directory");
            }

            var files = _blobs.Keys.Where(k => folder.Length == 0 || k.StartsWith(folder + "/", StringComparison.Ordinal)).Select(Absolute).ToList();

            // Go marshals the nil slice of an empty walk as null.
            return new Autogen.InvokeBindingResponse { Data = files.Count == 0 ? ByteString.CopyFromUtf8("null") : Json(files) };
        }

        var payload = ListPayload.Read(request.Data, flavour);
        var pageSize = Math.Min(payload.MaxResults > 0 ? payload.MaxResults : flavour == BlobFlavour.S3 ? 1000 : 5000, maxPageSize);
        var after = flavour == BlobFlavour.AzureBlob && payload.Marker.Length > 0
            ? Encoding.UTF8.GetString(Convert.FromBase64String(payload.Marker))
            : payload.Marker;
        var matching = _blobs.Where(b => b.Key.StartsWith(payload.Prefix, StringComparison.Ordinal) && string.CompareOrdinal(b.Key, after) > 0).ToList();
        var page = matching.Take(pageSize).ToList();
        var truncated = matching.Count > page.Count;

        if (flavour == BlobFlavour.S3)
        {
            return new Autogen.InvokeBindingResponse
            {
                Data = Json(new Dictionary<string, object?>
                {
                    ["CommonPrefixes"] = null,
                    ["Contents"] = page.Select(b => new Dictionary<string, object?>
                    {
                        ["ETag"] = $"\"{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(b.Value))[..32].ToLowerInvariant()}\"",
                        ["Key"] = b.Key,
                        ["LastModified"] = "2026-01-01T00:00:00Z",
                        ["Owner"] = null,
                        ["Size"] = b.Value.LongLength,
                        ["StorageClass"] = "STANDARD",
                    }).ToList(),
                    ["Delimiter"] = "",
                    ["EncodingType"] = null,
                    ["IsTruncated"] = truncated,
                    ["Marker"] = payload.Marker,
                    ["MaxKeys"] = pageSize,
                    ["Name"] = "agent-episodes",
                    ["NextMarker"] = null,
                    ["Prefix"] = payload.Prefix,
                }),
            };
        }

        var response = new Autogen.InvokeBindingResponse
        {
            Data = Json(page.Select(b => new Dictionary<string, object?>
            {
                ["Deleted"] = false,
                ["Name"] = b.Key,
                ["Properties"] = new Dictionary<string, object?>
                {
                    ["ContentLength"] = b.Value.LongLength,
                    ["ContentType"] = "application/json",
                    ["BlobType"] = "BlockBlob",
                },
                ["Snapshot"] = "",
            }).ToList()),
        };
        response.Metadata["marker"] = truncated ? Convert.ToBase64String(Encoding.UTF8.GetBytes(page[^1].Key)) : "";
        response.Metadata["number"] = page.Count.ToString(CultureInfo.InvariantCulture);
        response.Metadata["pagesTraversed"] = "1";
        return response;
    }

    private string Absolute(string name) => name.Length == 0 ? localRoot : $"{localRoot}/{name}";

    /// <summary>securejoin's effect on a relative name: no way out of the root.</summary>
    private static string Clean(string name)
    {
        var parts = new List<string>();
        foreach (var part in name.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }
            }
            else if (part != ".")
            {
                parts.Add(part);
            }
        }

        return string.Join('/', parts);
    }

    private static string Parent(string name) => name.LastIndexOf('/') is var slash and > 0 ? name[..slash] : "";

    private static ByteString Json<T>(T value) => ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(value));

    /// <summary>Go's base64.StdEncoding.DecodeString: padded standard alphabet, or null.</summary>
    private static byte[]? StrictBase64(string text)
    {
        if (text.Length % 4 != 0 || text.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=')))
        {
            return null;
        }

        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Go's strconv.Unquote for the forms a payload can take: "...", `...` and '.'; null when it fails.</summary>
    public static string? GoUnquote(string text)
    {
        if (text.Length < 2 || text[0] != text[^1])
        {
            return null;
        }

        var body = text[1..^1];
        switch (text[0])
        {
            case '`':
                return body.Contains('`', StringComparison.Ordinal) || body.Contains('\r', StringComparison.Ordinal) ? null : body;
            case '"':
            case '\'':
                var result = new StringBuilder(body.Length);
                for (var i = 0; i < body.Length; i++)
                {
                    var c = body[i];
                    if (c == text[0] || c == '\n')
                    {
                        return null;
                    }

                    if (c != '\\')
                    {
                        result.Append(c);
                        continue;
                    }

                    if (++i >= body.Length)
                    {
                        return null;
                    }

                    switch (body[i])
                    {
                        case 'a': result.Append('\a'); break;
                        case 'b': result.Append('\b'); break;
                        case 'f': result.Append('\f'); break;
                        case 'n': result.Append('\n'); break;
                        case 'r': result.Append('\r'); break;
                        case 't': result.Append('\t'); break;
                        case 'v': result.Append('\v'); break;
                        case '\\': result.Append('\\'); break;
                        case '"' when text[0] == '"': result.Append('"'); break;
                        case '\'' when text[0] == '\'': result.Append('\''); break;
                        case 'x' when body.Length - i - 1 >= 2 && byte.TryParse(body.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hex) && hex < 0x80:
                            result.Append((char)hex);
                            i += 2;
                            break;
                        case 'u' when body.Length - i - 1 >= 4 && int.TryParse(body.AsSpan(i + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var code) && code is < 0xD800 or > 0xDFFF:
                            result.Append((char)code);
                            i += 4;
                            break;
                        default:
                            return null;
                    }
                }

                // A single-quoted literal is one rune.
                return text[0] == '\'' && System.Globalization.StringInfo.ParseCombiningCharacters(result.ToString()).Length != 1 ? null : result.ToString();
            default:
                return null;
        }
    }

    private sealed record ListPayload(int MaxResults, string Prefix, string Marker)
    {
        public static ListPayload Read(ByteString data, BlobFlavour flavour)
        {
            if (data.IsEmpty)
            {
                // S3 unmarshals the payload unconditionally; Azure treats a missing one as defaults.
                return flavour == BlobFlavour.S3 ? throw new BindingFailedException("unexpected end of JSON input") : new ListPayload(0, "", "");
            }

            try
            {
                using var document = JsonDocument.Parse(data.Memory);
                var root = document.RootElement;
                return new ListPayload(
                    root.TryGetProperty("maxResults", out var max) && max.ValueKind == JsonValueKind.Number ? max.GetInt32() : 0,
                    root.TryGetProperty("prefix", out var prefix) && prefix.ValueKind == JsonValueKind.String ? prefix.GetString()! : "",
                    root.TryGetProperty("marker", out var marker) && marker.ValueKind == JsonValueKind.String ? marker.GetString()! : "");
            }
            catch (JsonException e)
            {
                throw new BindingFailedException(e.Message);
            }
        }
    }
}
