using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace PersistentAgents.Agents.Rest;

/// <summary>
/// Checks a request body against the request message of its gRPC method before the method reads it. REST:
/// JSON transcoding ignores unknown fields and answers every shape error with the same sentence, while a
/// caller needs to know which field is wrong. gRPC: bytes that are not the message would fail inside the
/// gRPC handler as UNKNOWN ("exception was thrown by handler"), a server error, when they are the caller's.
/// The proto descriptor is the schema, so REST and gRPC still share one definition.
/// </summary>
public sealed class RequestShapeMiddleware(RequestDelegate next, IEnumerable<FileDescriptor> contracts)
{
    private const int MaxBodyBytes = 1024 * 1024;

    /// <summary>gRPC's default receive limit (4 MB) and the 5-byte frame header.</summary>
    private const int MaxGrpcFrameBytes = 4 * 1024 * 1024 + 5;
    private readonly Dictionary<string, MessageDescriptor> _inputByMethod = contracts
        .SelectMany(file => file.Services)
        .SelectMany(service => service.Methods)
        .ToDictionary(method => $"/{method.Service.FullName}/{method.Name}", method => method.InputType, StringComparer.Ordinal);

    public async Task InvokeAsync(HttpContext context)
    {
        var method = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>();
        if (method is null
            || !HttpMethods.IsPost(context.Request.Method) && !HttpMethods.IsPut(context.Request.Method) && !HttpMethods.IsPatch(context.Request.Method)
            || !_inputByMethod.TryGetValue(method.Method.FullName, out var input))
        {
            await next(context);
            return;
        }

        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true)
        {
            if (method.Method.Type is MethodType.Unary or MethodType.ServerStreaming && await GrpcMessageProblemAsync(context, input) is { } grpcProblem)
            {
                await RestError.RefuseAsync(context, StatusCode.InvalidArgument, grpcProblem);
                return;
            }

            await next(context);
            return;
        }

        if (context.Request.ContentLength > MaxBodyBytes)
        {
            await RejectAsync(context, StatusCodes.Status413PayloadTooLarge, $"body: is {context.Request.ContentLength} bytes, the limit is {MaxBodyBytes}");
            return;
        }

        context.Request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: MaxBodyBytes);
        string? problem;
        try
        {
            using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            problem = ShapeProblem(document.RootElement, input, path: "");
        }
        catch (JsonException e)
        {
            problem = $"body: is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})";
        }

        if (problem is not null)
        {
            await RejectAsync(context, StatusCodes.Status400BadRequest, problem);
            return;
        }

        context.Request.Body.Position = 0;
        await next(context);
    }

    /// <summary>
    /// The one length-prefixed message of a unary or server-streaming call, parsed as its input type. Frames
    /// this cannot judge (compressed, or larger than gRPC's own receive limit) are left to the gRPC handler.
    /// </summary>
    private static async Task<string?> GrpcMessageProblemAsync(HttpContext context, MessageDescriptor input)
    {
        context.Request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: MaxGrpcFrameBytes);
        var body = new MemoryStream();
        try
        {
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        }
        catch (IOException)
        {
            return null;
        }
        finally
        {
            context.Request.Body.Position = 0;
        }

        var frame = body.GetBuffer().AsMemory(0, (int)body.Length);
        if (frame.Length < 5)
        {
            return $"body: is not a gRPC message ({frame.Length} bytes, a frame has at least 5)";
        }

        if (frame.Span[0] != 0)
        {
            return null;
        }

        var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(frame.Span[1..5]);
        if (length != frame.Length - 5)
        {
            return $"body: the gRPC frame announces {length} bytes of message and {frame.Length - 5} follow";
        }

        try
        {
            input.Parser.ParseFrom(frame.Span[5..]);
            return null;
        }
        catch (InvalidProtocolBufferException e)
        {
            return $"body: is not a {input.FullName} message ({e.Message})";
        }
    }

    /// <returns>The first problem found, naming the field by its JSON path; null when the shape fits.</returns>
    internal static string? ShapeProblem(JsonElement element, MessageDescriptor message, string path)
    {
        if (message.FullName is "google.protobuf.Struct" or "google.protobuf.Value" or "google.protobuf.ListValue")
        {
            return message.FullName == "google.protobuf.Struct" && element.ValueKind != JsonValueKind.Object
                ? $"{Name(path, "body")}: must be a JSON object"
                : null;
        }

        if (element.ValueKind != JsonValueKind.Object)
        {
            return $"{Name(path, "body")}: must be a JSON object";
        }

        foreach (var property in element.EnumerateObject())
        {
            var fieldPath = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
            var field = message.FindFieldByName(property.Name)
                        ?? message.Fields.InDeclarationOrder().FirstOrDefault(f => f.JsonName == property.Name);
            if (field is null)
            {
                return $"{fieldPath}: is not a field of {message.Name}";
            }

            if (property.Value.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            if (field.IsRepeated && !field.IsMap)
            {
                if (property.Value.ValueKind != JsonValueKind.Array)
                {
                    return $"{fieldPath}: must be a JSON array";
                }

                var index = 0;
                foreach (var item in property.Value.EnumerateArray())
                {
                    if (ValueProblem(item, field, $"{fieldPath}[{index++}]") is { } itemProblem)
                    {
                        return itemProblem;
                    }
                }
            }
            else if (field.IsMap)
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                {
                    return $"{fieldPath}: must be a JSON object";
                }
            }
            else if (ValueProblem(property.Value, field, fieldPath) is { } valueProblem)
            {
                return valueProblem;
            }
        }

        return null;
    }

    private static string? ValueProblem(JsonElement value, FieldDescriptor field, string path) => field.FieldType switch
    {
        FieldType.String or FieldType.Bytes => value.ValueKind == JsonValueKind.String ? null : $"{path}: must be a JSON string",
        FieldType.Bool => value.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : $"{path}: must be true or false",
        FieldType.Message => ShapeProblem(value, field.MessageType, path),
        FieldType.Enum => value.ValueKind is JsonValueKind.String or JsonValueKind.Number ? null : $"{path}: must be an enum name",
        // Numbers may come as JSON numbers or as strings holding one (protobuf JSON mapping).
        _ => value.ValueKind == JsonValueKind.Number || (value.ValueKind == JsonValueKind.String && IsNumberText(value.GetString()!))
            ? null
            : $"{path}: must be a number",
    };

    private static bool IsNumberText(string text) =>
        text is "NaN" or "Infinity" or "-Infinity"
        || double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _);

    private static string Name(string path, string whenEmpty) => path.Length == 0 ? whenEmpty : path;

    private static Task RejectAsync(HttpContext context, int status, string message) =>
        RestError.WriteAsync(context, StatusCode.InvalidArgument, message, status);
}
