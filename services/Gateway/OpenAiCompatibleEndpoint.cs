using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf.Collections;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Gateway;

public static class OpenAiCompatibleEndpoint
{
    /// <summary>
    /// The gateway in the OpenAI chat-completions protocol, so that any OpenAI client can use it:
    /// <c>POST /v1/chat/completions</c> (non-streaming) and <c>GET /v1/models</c>.
    /// </summary>
    public static IEndpointRouteBuilder MapOpenAiCompatibleApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var api = new OpenAiCompatibleApi(endpoints.ServiceProvider);
        endpoints.MapPost("/v1/chat/completions", (RequestDelegate)api.ChatCompletionsAsync);
        endpoints.MapGet("/v1/models", (RequestDelegate)api.ModelsAsync);
        return endpoints;
    }
}

/// <summary>
/// The request handlers of <see cref="OpenAiCompatibleEndpoint"/>. This is the gateway's hot path, so the
/// body is parsed with <see cref="Utf8JsonReader"/> straight from the request pipe and the reply is written
/// with a per-thread <see cref="Utf8JsonWriter"/>: no reflection, no intermediate DTOs, no per-request logs.
/// </summary>
internal sealed class OpenAiCompatibleApi(IServiceProvider services)
{
    public const string DefaultAgent = "openai-api";
    public const string DefaultTaskType = "general";
    public const int MaxBodyBytes = 1024 * 1024;

    /// <summary>How long the model index built from the catalog is trusted before it is listed again.</summary>
    private static readonly TimeSpan IndexLifetime = TimeSpan.FromSeconds(5);

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // Replies go to API clients, never into HTML: keep non-ASCII text readable and short.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    private IGatewayApi? _gateway;
    private TimeProvider? _time;
    private volatile ModelIndex? _index;

    private IGatewayApi Gateway => _gateway ??= services.GetRequiredService<IGatewayApi>();

    private TimeProvider Time => _time ??= services.GetService<TimeProvider>() ?? TimeProvider.System;

    public async Task ChatCompletionsAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.ContentLength > MaxBodyBytes)
        {
            await WriteErrorAsync(context, ApiError.TooLarge(request.ContentLength.Value));
            return;
        }

        // The caller's tenant keeps its cache entries and budgets apart from every other tenant's.
        var gatewayRequest = new GatewayRequest { Tenant = Tenancy.Of(context.User) ?? Tenancy.DefaultTenant };
        var headerError = ReadHeaders(request.Headers, gatewayRequest);
        if (headerError is not null)
        {
            await WriteErrorAsync(context, headerError.Value);
            return;
        }

        // The whole body, left in the pipe until parsed (no copy).
        var body = request.BodyReader;
        System.IO.Pipelines.ReadResult read;
        while (true)
        {
            read = await body.ReadAsync(context.RequestAborted);
            if (read.Buffer.Length > MaxBodyBytes)
            {
                body.AdvanceTo(read.Buffer.End);
                await WriteErrorAsync(context, ApiError.TooLarge(read.Buffer.Length));
                return;
            }

            if (read.IsCompleted || read.IsCanceled)
            {
                break;
            }

            body.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }

        ApiError? bodyError;
        string? model;
        try
        {
            bodyError = ParseBody(read.Buffer, gatewayRequest, out model);
        }
        finally
        {
            body.AdvanceTo(read.Buffer.End);
        }

        if (bodyError is not null)
        {
            await WriteErrorAsync(context, bodyError.Value);
            return;
        }

        var index = await IndexAsync(context.RequestAborted);
        if (!index.TryResolve(model!, gatewayRequest.Candidates))
        {
            await WriteErrorAsync(context, ApiError.Invalid("model",
                $"model: {ErrorText.Quote(model)} is not in the catalog; use \"provider/model\" or a model name from GET /v1/models, or \"auto\"",
                "model_not_found"));
            return;
        }

        GatewayReply reply;
        try
        {
            reply = await Gateway.CompleteAsync(gatewayRequest, context.RequestAborted);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return; // the client went away; nobody is left to answer
        }
        catch (RpcException e)
        {
            await WriteErrorAsync(context, ApiError.FromRpc(e));
            return;
        }

        if (!reply.Success)
        {
            await WriteErrorAsync(context, ApiError.AllFailed(reply));
            return;
        }

        var headers = context.Response.Headers;
        headers["x-pa-provider"] = reply.Arm.Provider;
        headers["x-pa-cost-usd"] = reply.CostUsd.ToString(CultureInfo.InvariantCulture);
        headers["x-pa-cache-hit"] = reply.CacheHit ? "true" : "false";
        headers["x-pa-simulated"] = reply.Simulated ? "true" : "false";
        var writer = RentWriter(out var buffer);
        WriteCompletion(writer, reply, Time.GetUtcNow().ToUnixTimeSeconds());
        await SendAsync(context.Response, StatusCodes.Status200OK, writer, buffer);
    }

    public async Task ModelsAsync(HttpContext context)
    {
        var catalog = await Gateway.ListModelsAsync(new ListModelsRequest(), context.RequestAborted);
        var writer = RentWriter(out var buffer);
        writer.WriteStartObject();
        writer.WriteString("object"u8, "list"u8);
        writer.WriteStartArray("data"u8);
        foreach (var entry in catalog.Models)
        {
            writer.WriteStartObject();
            WriteModelId(writer, "id"u8, entry.Arm.Provider, entry.Arm.Model);
            writer.WriteString("object"u8, "model"u8);
            writer.WriteNumber("created"u8, 0);
            writer.WriteString("owned_by"u8, entry.Arm.Provider);
            writer.WriteString("kind"u8, entry.Kind);
            writer.WriteBoolean("simulated"u8, entry.Simulated);
            writer.WriteNumber("input_price_per_mtok"u8, entry.InputPricePerMtok);
            writer.WriteNumber("output_price_per_mtok"u8, entry.OutputPricePerMtok);
            writer.WriteNumber("context_window"u8, entry.ContextWindow);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        await SendAsync(context.Response, StatusCodes.Status200OK, writer, buffer);
    }

    private static ApiError? ReadHeaders(IHeaderDictionary headers, GatewayRequest request)
    {
        request.Agent = DefaultAgent;
        if (headers.TryGetValue("x-pa-agent", out var agent) && agent.Count > 0)
        {
            if (agent.Count > 1 || !IsName(agent[0]))
            {
                return ApiError.Invalid("x-pa-agent", "x-pa-agent: must be 1 to 64 of lowercase letters, digits, '-' and '_'", "invalid_value");
            }

            request.Agent = agent[0]!;
        }

        request.TaskType = DefaultTaskType;
        if (headers.TryGetValue("x-pa-task-type", out var taskType) && taskType.Count > 0)
        {
            if (taskType.Count > 1 || !IsName(taskType[0]))
            {
                return ApiError.Invalid("x-pa-task-type", "x-pa-task-type: must be 1 to 64 of lowercase letters, digits, '-' and '_'", "invalid_value");
            }

            request.TaskType = taskType[0]!;
        }

        foreach (var value in headers.CacheControl)
        {
            if (value is not null && (value.Contains("no-cache", StringComparison.OrdinalIgnoreCase) || value.Contains("no-store", StringComparison.OrdinalIgnoreCase)))
            {
                request.NoCache = true;
            }
        }

        return null;
    }

    /// <summary>[a-z0-9_-]{1,64}: names that cannot escape a key prefix or a path, nor collide by case.</summary>
    private static bool IsName(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 64)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Reads <c>model</c>, <c>messages</c>, <c>stream</c> and <c>n</c>. Every other parameter is accepted and,
    /// unless it cannot change the answer (<see cref="IsAnswerNeutral"/>), goes into the request's
    /// answer parameters, which the response cache keys on.
    /// </summary>
    private static ApiError? ParseBody(ReadOnlySequence<byte> body, GatewayRequest request, out string? model)
    {
        model = null;
        SortedDictionary<string, JsonElement>? answerParameters = null;
        if (body.IsEmpty)
        {
            return ApiError.Invalid(null, "body: is required: a JSON object with model and messages", "invalid_json");
        }

        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
        var sawMessages = false;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return ApiError.Invalid(null, "body: must be a JSON object", "invalid_json");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        return ApiError.Invalid("model", "model: must be a string: \"provider/model\", a model name or \"auto\"", "invalid_type");
                    }

                    model = reader.GetString();
                }
                else if (reader.ValueTextEquals("messages"u8))
                {
                    reader.Read();
                    sawMessages = true;
                    var error = ParseMessages(ref reader, request.Messages);
                    if (error is not null)
                    {
                        return error;
                    }
                }
                else if (reader.ValueTextEquals("stream"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.True)
                    {
                        return ApiError.Invalid("stream", "stream: streaming is not supported here; leave stream out or set it to false", "unsupported_value");
                    }

                    if (reader.TokenType is not (JsonTokenType.False or JsonTokenType.Null))
                    {
                        return ApiError.Invalid("stream", "stream: must be a boolean", "invalid_type");
                    }
                }
                else if (reader.ValueTextEquals("n"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Null && !(reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var n) && n == 1))
                    {
                        return ApiError.Invalid("n", "n: only 1 choice is supported", "unsupported_value");
                    }
                }
                else if (IsAnswerNeutral(ref reader))
                {
                    reader.Read();
                    reader.Skip();
                }
                else
                {
                    var name = reader.GetString()!;
                    reader.Read();
                    answerParameters ??= new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
                    answerParameters[name] = JsonElement.ParseValue(ref reader);
                }
            }

            // Past the closing brace: anything but whitespace after it throws.
            if (reader.Read())
            {
                return ApiError.Invalid(null, "body: must hold exactly one JSON object", "invalid_json");
            }
        }
        catch (JsonException e)
        {
            return ApiError.Invalid(null, $"body: is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})", "invalid_json");
        }
        catch (InvalidOperationException)
        {
            return ApiError.Invalid(null, "body: holds a string that is not valid UTF-8", "invalid_json");
        }

        if (model is null)
        {
            return ApiError.Invalid("model", "model: is required: \"provider/model\", a model name from GET /v1/models, or \"auto\"", "missing_required_parameter");
        }

        if (model.Length == 0)
        {
            return ApiError.Invalid("model", "model: must not be empty", "invalid_value");
        }

        if (!sawMessages)
        {
            return ApiError.Invalid("messages", "messages: is required", "missing_required_parameter");
        }

        request.AnswerParameters = answerParameters is null ? "" : CanonicalJson(answerParameters);
        return null;
    }

    /// <summary>
    /// The parameters by name, sorted, each value written compactly as parsed: two bodies that ask the same
    /// thing with their properties in another order or other spacing give the same text. Nested values keep
    /// their order, since a schema's property order is the order a model writes its fields in.
    /// </summary>
    private static string CanonicalJson(SortedDictionary<string, JsonElement> parameters)
    {
        var writer = RentWriter(out var buffer);
        writer.WriteStartObject();
        foreach (var (name, value) in parameters)
        {
            writer.WritePropertyName(name);
            value.WriteTo(writer);
        }

        writer.WriteEndObject();
        writer.Flush();
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Body parameters that cannot change the answer and so stay out of the cache key: how it is delivered
    /// (<c>stream_options</c>; <c>stream</c> and <c>n</c> are read above), who asked (<c>user</c>,
    /// <c>metadata</c>), whether the provider keeps it (<c>store</c>) and its latency tier
    /// (<c>service_tier</c>). Any other, an unknown future parameter included, splits the key: a needless
    /// miss rather than a wrong hit.
    /// </summary>
    private static bool IsAnswerNeutral(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("stream_options"u8) || reader.ValueTextEquals("user"u8) || reader.ValueTextEquals("metadata"u8)
        || reader.ValueTextEquals("store"u8) || reader.ValueTextEquals("service_tier"u8);

    private static ApiError? ParseMessages(ref Utf8JsonReader reader, RepeatedField<ChatMessage> messages)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return ApiError.Invalid("messages", "messages: must be an array of {role, content} objects", "invalid_type");
        }

        var index = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return ApiError.Invalid(Field(index, null), $"{Field(index, null)}: must be an object with role and content", "invalid_type");
            }

            string? role = null;
            string? content = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("role"u8))
                {
                    reader.Read();
                    role = reader.TokenType != JsonTokenType.String ? ""
                        : reader.ValueTextEquals("user"u8) ? "user"
                        : reader.ValueTextEquals("system"u8) || reader.ValueTextEquals("developer"u8) ? "system"
                        : reader.ValueTextEquals("assistant"u8) ? "assistant"
                        : "";
                    if (role.Length == 0)
                    {
                        return ApiError.Invalid(Field(index, "role"),
                            $"{Field(index, "role")}: must be \"system\", \"developer\", \"user\" or \"assistant\" (tool messages are not supported)", "invalid_value");
                    }
                }
                else if (reader.ValueTextEquals("content"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        content = reader.GetString();
                    }
                    else if (reader.TokenType == JsonTokenType.StartArray)
                    {
                        var error = ParseContentParts(ref reader, index, out content);
                        if (error is not null)
                        {
                            return error;
                        }
                    }
                    else
                    {
                        return ApiError.Invalid(Field(index, "content"), $"{Field(index, "content")}: must be a string or an array of text parts", "invalid_type");
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (role is null)
            {
                return ApiError.Invalid(Field(index, "role"), $"{Field(index, "role")}: is required", "missing_required_parameter");
            }

            if (content is null)
            {
                return ApiError.Invalid(Field(index, "content"), $"{Field(index, "content")}: is required", "missing_required_parameter");
            }

            messages.Add(new ChatMessage { Role = role, Content = content });
            index++;
        }

        return index == 0 ? ApiError.Invalid("messages", "messages: must not be empty", "invalid_value") : null;
    }

    /// <summary>The array form of content: text parts only, joined by newlines.</summary>
    private static ApiError? ParseContentParts(ref Utf8JsonReader reader, int index, out string? content)
    {
        content = null;
        StringBuilder? joined = null;
        var part = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var field = $"{Field(index, "content")}[{part}]";
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return ApiError.Invalid(field, $"{field}: must be a {{type: \"text\", text}} object", "invalid_type");
            }

            string? text = null;
            var isText = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    isText = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("text"u8);
                    if (!isText)
                    {
                        return ApiError.Invalid($"{field}.type", $"{field}.type: only \"text\" parts are supported", "unsupported_value");
                    }
                }
                else if (reader.ValueTextEquals("text"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        return ApiError.Invalid($"{field}.text", $"{field}.text: must be a string", "invalid_type");
                    }

                    text = reader.GetString();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (!isText || text is null)
            {
                return ApiError.Invalid(field, $"{field}: must have type \"text\" and a text", "missing_required_parameter");
            }

            if (content is null)
            {
                content = text;
            }
            else
            {
                joined ??= new StringBuilder(content);
                joined.Append('\n').Append(text);
            }

            part++;
        }

        content = joined?.ToString() ?? content ?? "";
        return null;
    }

    private static string Field(int index, string? name) => name is null
        ? string.Create(CultureInfo.InvariantCulture, $"messages[{index}]")
        : string.Create(CultureInfo.InvariantCulture, $"messages[{index}].{name}");

    private async ValueTask<ModelIndex> IndexAsync(CancellationToken cancellationToken)
    {
        var index = _index;
        if (index is not null && Time.GetElapsedTime(index.BuiltAt) < IndexLifetime)
        {
            return index;
        }

        var catalog = await Gateway.ListModelsAsync(new ListModelsRequest(), cancellationToken);
        index = new ModelIndex(catalog, Time.GetTimestamp());
        _index = index;
        return index;
    }

    private static void WriteCompletion(Utf8JsonWriter writer, GatewayReply reply, long created)
    {
        Span<byte> random = stackalloc byte[12];
        Random.Shared.NextBytes(random);
        Span<char> id = stackalloc char[9 + 24];
        "chatcmpl-".CopyTo(id);
        Convert.TryToHexStringLower(random, id[9..], out _);

        writer.WriteStartObject();
        writer.WriteString("id"u8, id);
        writer.WriteString("object"u8, "chat.completion"u8);
        writer.WriteNumber("created"u8, created);
        WriteModelId(writer, "model"u8, reply.Arm.Provider, reply.Arm.Model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("message"u8);
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteString("content"u8, reply.Text);
        writer.WriteEndObject();
        writer.WriteNull("logprobs"u8);
        writer.WriteString("finish_reason"u8, "stop"u8);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("prompt_tokens"u8, reply.TokensIn);
        writer.WriteNumber("completion_tokens"u8, reply.TokensOut);
        writer.WriteNumber("total_tokens"u8, reply.TokensIn + reply.TokensOut);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>"provider/model" without building the string.</summary>
    private static void WriteModelId(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string provider, string model)
    {
        var length = provider.Length + 1 + model.Length;
        Span<char> id = length <= 256 ? stackalloc char[256] : new char[length];
        provider.CopyTo(id);
        id[provider.Length] = '/';
        model.CopyTo(id[(provider.Length + 1)..]);
        writer.WriteString(name, id[..length]);
    }

    private static Task WriteErrorAsync(HttpContext context, ApiError error)
    {
        var writer = RentWriter(out var buffer);
        writer.WriteStartObject();
        writer.WriteStartObject("error"u8);
        writer.WriteString("message"u8, error.Message);
        writer.WriteString("type"u8, error.Type);
        if (error.Param is null)
        {
            writer.WriteNull("param"u8);
        }
        else
        {
            writer.WriteString("param"u8, error.Param);
        }

        if (error.Code is null)
        {
            writer.WriteNull("code"u8);
        }
        else
        {
            writer.WriteString("code"u8, error.Code);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
        return SendAsync(context.Response, error.Status, writer, buffer);
    }

    private static Utf8JsonWriter RentWriter(out ArrayBufferWriter<byte> buffer)
    {
        buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        writer.Reset(buffer);
        return writer;
    }

    /// <summary>
    /// Copies the per-thread buffer into the response pipe before the first await (the buffer belongs to
    /// this thread only until then), with its exact Content-Length.
    /// </summary>
    private static Task SendAsync(HttpResponse response, int status, Utf8JsonWriter writer, ArrayBufferWriter<byte> buffer)
    {
        writer.Flush();
        var json = buffer.WrittenSpan;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = json.Length;
        var pipe = response.BodyWriter;
        json.CopyTo(pipe.GetSpan(json.Length));
        pipe.Advance(json.Length);
        if (buffer.Capacity > 256 * 1024)
        {
            t_buffer = null; // do not keep a large reply's buffer alive on this thread
            t_writer = null;
        }

        var flush = pipe.FlushAsync();
        return flush.IsCompletedSuccessfully ? Task.CompletedTask : flush.AsTask();
    }

    /// <summary>The catalog's arms by "provider/model" id and by bare model name, in catalog order.</summary>
    private sealed class ModelIndex
    {
        private readonly (string Provider, string Model)[] _all;
        private readonly Dictionary<string, (string Provider, string Model)[]> _byName = new(StringComparer.Ordinal);

        public ModelIndex(ModelCatalog catalog, long builtAt)
        {
            BuiltAt = builtAt;
            _all = [.. catalog.Models.Select(m => (m.Arm.Provider, m.Arm.Model))];
            foreach (var group in _all.GroupBy(a => a.Model, StringComparer.Ordinal))
            {
                _byName[group.Key] = [.. group];
            }

            // Full ids win over a bare name that happens to look like one (model names may contain '/').
            foreach (var arm in _all)
            {
                _byName[$"{arm.Provider}/{arm.Model}"] = [arm];
            }
        }

        public long BuiltAt { get; }

        public bool TryResolve(string model, RepeatedField<ArmRef> candidates)
        {
            var arms = model == "auto" ? _all : _byName.GetValueOrDefault(model);
            if (arms is null || arms.Length == 0)
            {
                return false;
            }

            foreach (var (provider, name) in arms)
            {
                candidates.Add(new ArmRef { Provider = provider, Model = name });
            }

            return true;
        }
    }

    private readonly record struct ApiError(int Status, string Message, string Type, string? Param, string? Code)
    {
        public static ApiError Invalid(string? param, string message, string code) =>
            new(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, code);

        public static ApiError TooLarge(long bytes) => new(StatusCodes.Status413PayloadTooLarge,
            string.Create(CultureInfo.InvariantCulture, $"body: is {bytes} bytes, the limit is {MaxBodyBytes}"), "invalid_request_error", null, "request_too_large");

        public static ApiError AllFailed(GatewayReply reply)
        {
            var tried = reply.Attempts.Count == 0
                ? "no candidate was tried"
                : string.Join("; ", reply.Attempts.Select(a => $"{a.Arm.Provider}/{a.Arm.Model} {a.Outcome}: {a.Error}"));
            return new(StatusCodes.Status503ServiceUnavailable, $"every candidate failed: {tried}", "server_error", null, "all_candidates_failed");
        }

        /// <summary>A refusal from the gateway itself (a budget, a bad argument) in the OpenAI error shape.</summary>
        public static ApiError FromRpc(RpcException e)
        {
            var message = e.Status.Detail;
            var colon = message.IndexOf(':', StringComparison.Ordinal);
            var param = colon > 0 && !message.AsSpan(0, colon).Contains(' ') ? message[..colon] : null;
            return e.StatusCode switch
            {
                StatusCode.InvalidArgument or StatusCode.OutOfRange => new(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, "invalid_value"),
                StatusCode.FailedPrecondition => new(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, "failed_precondition"),
                StatusCode.ResourceExhausted => new(StatusCodes.Status429TooManyRequests, message, "rate_limit_error", param, "resource_exhausted"),
                StatusCode.PermissionDenied => new(StatusCodes.Status403Forbidden, message, "permission_error", param, "permission_denied"),
                StatusCode.Unauthenticated => new(StatusCodes.Status401Unauthorized, message, "authentication_error", param, "unauthenticated"),
                StatusCode.NotFound => new(StatusCodes.Status404NotFound, message, "invalid_request_error", param, "not_found"),
                StatusCode.DeadlineExceeded => new(StatusCodes.Status504GatewayTimeout, message, "server_error", null, "timeout"),
                StatusCode.Unavailable => new(StatusCodes.Status503ServiceUnavailable, message, "server_error", null, "unavailable"),
                _ => new(StatusCodes.Status500InternalServerError, message, "server_error", null, "internal_error"),
            };
        }
    }
}
