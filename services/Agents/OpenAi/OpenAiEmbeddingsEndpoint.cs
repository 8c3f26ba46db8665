using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

public static class OpenAiEmbeddingsEndpoint
{
    /// <summary>
    /// <c>POST /v1/embeddings</c> in OpenAI's protocol, embedding with the memory service's embedder (the one
    /// semantic memory uses), so that an OpenAI client can embed texts the way the platform compares them.
    /// The limits on items and characters are the memory service's (Memory:EmbedMaxInputs,
    /// EmbedMaxInputCharacters, EmbedMaxTotalCharacters); keys, tenants and rate limits are the group's it is mapped in.
    /// </summary>
    public static IEndpointRouteBuilder MapOpenAiEmbeddingsApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var api = new OpenAiEmbeddingsApi(endpoints.ServiceProvider);
        endpoints.MapPost("/v1/embeddings", (RequestDelegate)api.EmbeddingsAsync);
        return endpoints;
    }
}

/// <summary>The request handler of <see cref="OpenAiEmbeddingsEndpoint"/>.</summary>
internal sealed class OpenAiEmbeddingsApi(IServiceProvider services)
{
    /// <summary>
    /// Room for the memory service's default total of 1 Mi characters even when every one of them comes as a
    /// six-byte \uXXXX escape; the memory service enforces its own limits on what it is asked to embed.
    /// </summary>
    public const int MaxBodyBytes = 8 * 1024 * 1024;

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private IMemoryApi? _memory;

    private IMemoryApi Memory => _memory ??= services.GetRequiredService<IMemoryApi>();

    public async Task EmbeddingsAsync(HttpContext context)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            bodySize.MaxRequestBodySize = MaxBodyBytes;
        }

        EmbeddingsRequest request;
        try
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            request = EmbeddingsRequest.Read(body.RootElement);
        }
        catch (JsonException e)
        {
            await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Invalid(null, $"body: is not valid JSON ({e.Message})", "invalid_json"));
            return;
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await OpenAiJson.SendErrorAsync(context.Response, new OpenAiError(StatusCodes.Status413PayloadTooLarge,
                $"body: is larger than {MaxBodyBytes} bytes", "invalid_request_error", null, "request_too_large"));
            return;
        }
        catch (InvalidEmbeddingsRequestException e)
        {
            await OpenAiJson.SendErrorAsync(context.Response, e.Error);
            return;
        }

        EmbedReply reply;
        try
        {
            var embed = new EmbedRequest { Tenant = Tenancy.Of(context.User) ?? Tenancy.DefaultTenant };
            embed.Inputs.AddRange(request.Inputs);
            reply = await Memory.EmbedAsync(embed, context.RequestAborted);
        }
        catch (RpcException e) when (!context.RequestAborted.IsCancellationRequested)
        {
            await OpenAiJson.SendErrorAsync(context.Response, FromMemory(e));
            return;
        }

        // The embedder is the memory service's, which it names only in its reply: the model and the
        // dimensions asked for are checked against it there, so that both modes check alike.
        var dimensions = reply.Embeddings.Count > 0 ? reply.Embeddings[0].Values.Count : 0;
        if (!Names(reply.Embedder, request.Model))
        {
            await OpenAiJson.SendErrorAsync(context.Response, request.Model.Length == 0
                ? OpenAiError.Invalid("model", $"model: is required; use '{reply.Embedder}'", "missing_required_parameter")
                : OpenAiError.Invalid("model", $"model: '{request.Model}' is not this platform's embedder; use '{reply.Embedder}'", "model_not_found"));
            return;
        }

        if (request.Dimensions is { } asked && asked != dimensions)
        {
            await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Invalid("dimensions",
                $"dimensions: {reply.Embedder} gives {dimensions} dimensions, not {asked}", "invalid_value"));
            return;
        }

        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        await WriteReplyAsync(context.Response.BodyWriter, reply, request.Base64, context.RequestAborted);
    }

    /// <summary>The memory service's refusal, whose limits name its field <c>inputs</c>: here it is <c>input</c>.</summary>
    private static OpenAiError FromMemory(RpcException e)
    {
        var error = OpenAiError.Of(e);
        return error.Message.StartsWith("inputs", StringComparison.Ordinal)
            ? error with { Message = string.Concat("input", error.Message.AsSpan("inputs".Length)), Param = "input" }
            : error;
    }

    /// <summary>The embedder's id ("{model}@{dimensions}") or its bare model name, in any case.</summary>
    private static bool Names(string embedder, string model)
    {
        var at = embedder.LastIndexOf('@');
        return string.Equals(model, embedder, StringComparison.OrdinalIgnoreCase)
            || (at > 0 && model.AsSpan().Equals(embedder.AsSpan(0, at), StringComparison.OrdinalIgnoreCase));
    }

    private static async Task WriteReplyAsync(PipeWriter body, EmbedReply reply, bool base64, CancellationToken cancellationToken)
    {
        await using (var json = new Utf8JsonWriter(body, WriterOptions))
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            for (var i = 0; i < reply.Embeddings.Count; i++)
            {
                json.WriteStartObject();
                json.WriteString("object", "embedding");
                json.WriteNumber("index", i);
                var values = reply.Embeddings[i].Values;
                if (base64)
                {
                    // OpenAI's base64: the floats' little-endian IEEE 754 bytes, which is how .NET lays them out
                    // on every platform it runs on.
                    json.WriteBase64String("embedding", MemoryMarshal.AsBytes<float>(values.ToArray()));
                }
                else
                {
                    json.WriteStartArray("embedding");
                    foreach (var value in values)
                    {
                        json.WriteNumberValue(value);
                    }

                    json.WriteEndArray();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("model", reply.Embedder);
            json.WriteStartObject("usage");
            json.WriteNumber("prompt_tokens", reply.Tokens);
            json.WriteNumber("total_tokens", reply.Tokens);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        await body.FlushAsync(cancellationToken);
    }
}

/// <summary>An embeddings request as read from its JSON body.</summary>
internal sealed record EmbeddingsRequest(IReadOnlyList<string> Inputs, string Model, bool Base64, int? Dimensions)
{
    /// <exception cref="InvalidEmbeddingsRequestException">A field is missing or not of its type; the error names it.</exception>
    public static EmbeddingsRequest Read(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(null, "body: must be a JSON object");
        }

        var inputs = body.TryGetProperty("input", out var input) ? ReadInputs(input) : throw Invalid("input", "input: is required");
        // Checked against the embedder once the memory service has named it (see OpenAiEmbeddingsApi).
        var model = !body.TryGetProperty("model", out var modelValue) || modelValue.ValueKind == JsonValueKind.Null ? ""
            : modelValue.ValueKind == JsonValueKind.String ? modelValue.GetString()!
            : throw Invalid("model", "model: must be a string, the embedder's id");
        var base64 = !body.TryGetProperty("encoding_format", out var format) || format.ValueKind == JsonValueKind.Null ? false
            : format.ValueKind == JsonValueKind.String && format.GetString() is "float" or "base64" ? format.GetString() == "base64"
            : throw Invalid("encoding_format", "encoding_format: must be \"float\" or \"base64\"");
        int? dimensions = !body.TryGetProperty("dimensions", out var dims) || dims.ValueKind == JsonValueKind.Null ? null
            : dims.ValueKind == JsonValueKind.Number && dims.TryGetInt32(out var count) && count > 0 ? count
            : throw Invalid("dimensions", "dimensions: must be a positive whole number");
        if (body.TryGetProperty("user", out var user) && user.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
        {
            throw Invalid("user", "user: must be a string");
        }

        return new EmbeddingsRequest(inputs, model, base64, dimensions);
    }

    private static List<string> ReadInputs(JsonElement input)
    {
        if (input.ValueKind == JsonValueKind.String)
        {
            return [input.GetString()!];
        }

        if (input.ValueKind != JsonValueKind.Array)
        {
            throw Invalid("input", "input: must be a string or an array of strings");
        }

        var texts = new List<string>(input.GetArrayLength());
        foreach (var item in input.EnumerateArray())
        {
            texts.Add(item.ValueKind switch
            {
                JsonValueKind.String => item.GetString()!,
                // Token ids are some other model's; this embedder reads text with its own tokenizer.
                JsonValueKind.Number or JsonValueKind.Array => throw Invalid("input", "input: token arrays are not accepted; send the texts as strings"),
                _ => throw Invalid("input", $"input[{texts.Count}]: must be a string"),
            });
        }

        return texts;
    }

    private static InvalidEmbeddingsRequestException Invalid(string? param, string message) =>
        new(OpenAiError.Invalid(param, message, "invalid_value"));
}

/// <summary>A request that cannot be read; <see cref="Error"/> names the field.</summary>
internal sealed class InvalidEmbeddingsRequestException(OpenAiError error) : Exception(error.Message)
{
    public OpenAiError Error { get; } = error;
}
