using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// Reads a <c>POST /v1/chat/completions</c> request into an <see cref="OpenAiChatRequest"/>, or the error that
/// names the first field that is wrong. This is the gateway's hot path, so the body is parsed with a
/// <see cref="Utf8JsonReader"/> straight from the request pipe: no reflection, no intermediate DTOs.
/// </summary>
internal static class OpenAiChatRequestReader
{
    public const string DefaultAgent = "openai-api";

    public const string DefaultTaskType = "general";

    public const int MaxBodyBytes = 1024 * 1024;

    private enum Property
    {
        Model,
        Messages,
        Stream,
        StreamOptions,
        N,
        Tools,
        ToolChoice,
        ParallelToolCalls,
        ResponseFormat,
        MaxTokens,
        MaxCompletionTokens,
        Temperature,
        TopP,
        Stop,
        Seed,
        User,
        FrequencyPenalty,
        PresencePenalty,

        /// <summary>Cannot change the answer: who the caller is to the provider, and how the provider keeps or schedules it.</summary>
        AnswerNeutral,

        /// <summary>Not read here; passed over, but part of the cache key (an unknown future parameter may change the answer).</summary>
        Other,
    }

    public static async ValueTask<OpenAiError?> ReadAsync(HttpContext context, OpenAiChatRequest request)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var http = context.Request;
        if (http.ContentLength > MaxBodyBytes)
        {
            return OpenAiError.TooLarge(http.ContentLength.Value, MaxBodyBytes);
        }

        // The caller's tenant keeps its cache entries and budgets apart from every other tenant's.
        request.Gateway.Tenant = Tenancy.Of(context.User) ?? Tenancy.DefaultTenant;
        if (ReadHeaders(http.Headers, request) is { } headerError)
        {
            return headerError;
        }

        // The whole body, left in the pipe until parsed (no copy).
        var body = http.BodyReader;
        ReadResult read;
        while (true)
        {
            read = await body.ReadAsync(context.RequestAborted);
            if (read.Buffer.Length > MaxBodyBytes)
            {
                body.AdvanceTo(read.Buffer.End);
                return OpenAiError.TooLarge(read.Buffer.Length, MaxBodyBytes);
            }

            if (read.IsCompleted || read.IsCanceled)
            {
                break;
            }

            body.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }

        try
        {
            return ReadBody(read.Buffer, request);
        }
        finally
        {
            body.AdvanceTo(read.Buffer.End);
        }
    }

    /// <summary><c>x-pa-agent</c> (whose budget and cache scope apply), <c>x-pa-task-type</c>, <c>x-pa-session</c> and <c>Cache-Control</c>.</summary>
    public static OpenAiError? ReadHeaders(IHeaderDictionary headers, OpenAiChatRequest request)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(request);
        var gateway = request.Gateway;
        gateway.Agent = DefaultAgent;
        if (headers.TryGetValue("x-pa-agent", out var agent) && agent.Count > 0)
        {
            if (agent.Count > 1 || !CompleteRequestValidator.IsValidName(agent[0] ?? ""))
            {
                return OpenAiError.Invalid("x-pa-agent", "x-pa-agent: must be 1 to 64 of lowercase letters, digits, '-' and '_'", "invalid_value");
            }

            gateway.Agent = agent[0]!;
        }

        gateway.TaskType = DefaultTaskType;
        if (headers.TryGetValue("x-pa-task-type", out var taskType) && taskType.Count > 0)
        {
            if (taskType.Count > 1 || !CompleteRequestValidator.IsValidName(taskType[0] ?? ""))
            {
                return OpenAiError.Invalid("x-pa-task-type", "x-pa-task-type: must be 1 to 64 of lowercase letters, digits, '-' and '_'", "invalid_value");
            }

            gateway.TaskType = taskType[0]!;
        }

        if (headers.TryGetValue("x-pa-session", out var session) && session.Count > 0)
        {
            if (session.Count > 1 || !CompleteRequestValidator.IsValidSessionId(session[0] ?? ""))
            {
                return OpenAiError.Invalid("x-pa-session", "x-pa-session: must be 1 to 128 characters of letters, digits, '.', ':', '-' or '_'", "invalid_value");
            }

            request.SessionId = session[0]!;
        }

        foreach (var value in headers.CacheControl)
        {
            if (value is not null && (value.Contains("no-cache", StringComparison.OrdinalIgnoreCase) || value.Contains("no-store", StringComparison.OrdinalIgnoreCase)))
            {
                gateway.NoCache = true;
            }
        }

        return null;
    }

    /// <summary>
    /// Reads every parameter of the body into <paramref name="request"/>. Besides, every parameter that can
    /// change the answer (all but the model, the messages, how the reply is delivered and the
    /// <see cref="Property.AnswerNeutral"/> ones) goes, as given, into the gateway request's answer
    /// parameters, which the response cache keys on.
    /// </summary>
    public static OpenAiError? ReadBody(ReadOnlySequence<byte> body, OpenAiChatRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (body.IsEmpty)
        {
            return OpenAiError.Invalid(null, "body: is required: a JSON object with model and messages", "invalid_json");
        }

        var gateway = request.Gateway;
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
        SortedDictionary<string, JsonElement>? answerParameters = null;
        var sawModel = false;
        var sawMessages = false;
        var sawStreamOptions = false;
        int? maxTokens = null;
        int? maxCompletionTokens = null;
        OpenAiToolsReader.ToolChoice? toolChoice = null;
        var options = new CompletionOptions();
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return OpenAiError.Invalid(null, "body: must be a JSON object", "invalid_json");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var property = PropertyOf(ref reader);
                var name = property is Property.Model or Property.Messages or Property.Stream or Property.StreamOptions or Property.N or Property.AnswerNeutral
                    ? null
                    : reader.GetString()!;
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null && property is not (Property.Model or Property.Messages))
                {
                    continue; // an explicit null is the parameter left out
                }

                if (name is not null)
                {
                    var value = reader;
                    answerParameters ??= new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
                    answerParameters[name] = JsonElement.ParseValue(ref value);
                }

                OpenAiError? error = null;
                switch (property)
                {
                    case Property.Model:
                        if (reader.TokenType != JsonTokenType.String)
                        {
                            return OpenAiError.Invalid("model", "model: must be a string: \"provider/model\", a model name, \"auto\" or \"agent/<name>\"", "invalid_type");
                        }

                        sawModel = true;
                        request.Model = reader.GetString()!;
                        break;
                    case Property.Messages:
                        sawMessages = true;
                        error = OpenAiMessagesReader.ReadMessages(ref reader, gateway.Messages);
                        break;
                    case Property.Stream:
                        error = OpenAiParameterReader.ReadBoolean(ref reader, "stream", out var stream);
                        request.Stream = stream;
                        break;
                    case Property.StreamOptions:
                        sawStreamOptions = true;
                        error = ReadStreamOptions(ref reader, request);
                        break;
                    case Property.N:
                        if (!(reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var n) && n == 1))
                        {
                            return OpenAiError.Invalid("n", "n: only 1 choice is supported", "unsupported_value");
                        }

                        break;
                    case Property.Tools:
                        error = OpenAiToolsReader.ReadTools(ref reader, gateway.Tools);
                        break;
                    case Property.ToolChoice:
                        error = OpenAiToolsReader.ReadToolChoice(ref reader, out toolChoice);
                        break;
                    case Property.ParallelToolCalls:
                        error = OpenAiParameterReader.ReadBoolean(ref reader, "parallel_tool_calls", out var parallel);
                        gateway.ParallelToolCalls = parallel;
                        break;
                    case Property.ResponseFormat:
                        error = OpenAiParameterReader.ReadResponseFormat(ref reader, gateway);
                        break;
                    case Property.MaxTokens:
                        error = OpenAiParameterReader.ReadInteger(ref reader, "max_tokens", 1, int.MaxValue, out var max);
                        maxTokens = (int)max;
                        break;
                    case Property.MaxCompletionTokens:
                        error = OpenAiParameterReader.ReadInteger(ref reader, "max_completion_tokens", 1, int.MaxValue, out var maxCompletion);
                        maxCompletionTokens = (int)maxCompletion;
                        break;
                    case Property.Temperature:
                        error = OpenAiParameterReader.ReadNumber(ref reader, "temperature", 0, 2, out var temperature);
                        options.Temperature = temperature;
                        break;
                    case Property.TopP:
                        error = OpenAiParameterReader.ReadNumber(ref reader, "top_p", 0, 1, out var topP);
                        options.TopP = topP;
                        break;
                    case Property.FrequencyPenalty:
                        error = OpenAiParameterReader.ReadNumber(ref reader, "frequency_penalty", -2, 2, out var frequencyPenalty);
                        options.FrequencyPenalty = frequencyPenalty;
                        break;
                    case Property.PresencePenalty:
                        error = OpenAiParameterReader.ReadNumber(ref reader, "presence_penalty", -2, 2, out var presencePenalty);
                        options.PresencePenalty = presencePenalty;
                        break;
                    case Property.Seed:
                        error = OpenAiParameterReader.ReadInteger(ref reader, "seed", long.MinValue, long.MaxValue, out var seed);
                        options.Seed = seed;
                        break;
                    case Property.Stop:
                        error = OpenAiParameterReader.ReadStop(ref reader, options.Stop);
                        break;
                    case Property.User:
                        if (reader.TokenType != JsonTokenType.String)
                        {
                            return OpenAiError.Invalid("user", "user: must be a string", "invalid_type");
                        }

                        options.User = reader.GetString()!;
                        break;
                    default:
                        reader.Skip();
                        break;
                }

                if (error is not null)
                {
                    return error;
                }
            }

            // Past the closing brace: anything but whitespace after it throws.
            if (reader.Read())
            {
                return OpenAiError.Invalid(null, "body: must hold exactly one JSON object", "invalid_json");
            }
        }
        catch (JsonException e)
        {
            return OpenAiError.Invalid(null, $"body: is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})", "invalid_json");
        }
        catch (InvalidOperationException)
        {
            return OpenAiError.Invalid(null, "body: holds a string that is not valid UTF-8", "invalid_json");
        }

        if (!sawModel)
        {
            return OpenAiError.Invalid("model", "model: is required: \"provider/model\", a model name from GET /v1/models, \"auto\" or \"agent/<name>\"", "missing_required_parameter");
        }

        if (request.Model.Length == 0)
        {
            return OpenAiError.Invalid("model", "model: must not be empty", "invalid_value");
        }

        if (!sawMessages)
        {
            return OpenAiError.Invalid("messages", "messages: is required", "missing_required_parameter");
        }

        if (sawStreamOptions && !request.Stream)
        {
            return OpenAiError.Invalid("stream_options", "stream_options: is only allowed when stream is true", "invalid_value");
        }

        if (maxTokens is not null && maxCompletionTokens is not null && maxTokens != maxCompletionTokens)
        {
            return OpenAiError.Invalid("max_tokens", "max_tokens: differs from max_completion_tokens; give one of them", "invalid_value");
        }

        if (toolChoice is { } choice && OpenAiToolsReader.CheckToolChoice(choice, gateway.Tools) is { } choiceError)
        {
            return choiceError;
        }

        gateway.ToolChoice = toolChoice?.Value ?? "";
        if ((maxCompletionTokens ?? maxTokens) is { } outputLimit)
        {
            options.MaxOutputTokens = outputLimit;
        }

        if (!options.Equals(new CompletionOptions()))
        {
            gateway.Options = options;
        }

        gateway.AnswerParameters = answerParameters is null ? "" : CanonicalJson(answerParameters);
        return null;
    }

    private static Property PropertyOf(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("model"u8) ? Property.Model
        : reader.ValueTextEquals("messages"u8) ? Property.Messages
        : reader.ValueTextEquals("stream"u8) ? Property.Stream
        : reader.ValueTextEquals("stream_options"u8) ? Property.StreamOptions
        : reader.ValueTextEquals("n"u8) ? Property.N
        : reader.ValueTextEquals("tools"u8) ? Property.Tools
        : reader.ValueTextEquals("tool_choice"u8) ? Property.ToolChoice
        : reader.ValueTextEquals("parallel_tool_calls"u8) ? Property.ParallelToolCalls
        : reader.ValueTextEquals("response_format"u8) ? Property.ResponseFormat
        : reader.ValueTextEquals("max_tokens"u8) ? Property.MaxTokens
        : reader.ValueTextEquals("max_completion_tokens"u8) ? Property.MaxCompletionTokens
        : reader.ValueTextEquals("temperature"u8) ? Property.Temperature
        : reader.ValueTextEquals("top_p"u8) ? Property.TopP
        : reader.ValueTextEquals("stop"u8) ? Property.Stop
        : reader.ValueTextEquals("seed"u8) ? Property.Seed
        : reader.ValueTextEquals("user"u8) ? Property.User
        : reader.ValueTextEquals("frequency_penalty"u8) ? Property.FrequencyPenalty
        : reader.ValueTextEquals("presence_penalty"u8) ? Property.PresencePenalty
        : reader.ValueTextEquals("metadata"u8) || reader.ValueTextEquals("store"u8) || reader.ValueTextEquals("service_tier"u8) ? Property.AnswerNeutral
        : Property.Other;

    /// <summary>
    /// The parameters by name, sorted, each value written compactly as parsed: two bodies that ask the same
    /// thing with their properties in another order or other spacing give the same text. Nested values keep
    /// their order, since a schema's property order is the order a model writes its fields in.
    /// </summary>
    private static string CanonicalJson(SortedDictionary<string, JsonElement> parameters)
    {
        var writer = OpenAiJson.Rent(out var buffer);
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

    private static OpenAiError? ReadStreamOptions(ref Utf8JsonReader reader, OpenAiChatRequest request)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return OpenAiError.Invalid("stream_options", "stream_options: must be an object", "invalid_type");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("include_usage"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.Null)
                {
                    var error = OpenAiParameterReader.ReadBoolean(ref reader, "stream_options.include_usage", out var includeUsage);
                    if (error is not null)
                    {
                        return error;
                    }

                    request.IncludeUsage = includeUsage;
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return null;
    }
}
