using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Google.Protobuf.Collections;
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

    /// <summary>OpenAI's own limits on the number of tools and of stop sequences.</summary>
    public const int MaxTools = 128;
    public const int MaxStopSequences = 4;

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
        ToolChoice? toolChoice = null;
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
                        error = ReadMessages(ref reader, gateway.Messages);
                        break;
                    case Property.Stream:
                        error = ReadBoolean(ref reader, "stream", out var stream);
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
                        error = ReadTools(ref reader, gateway.Tools);
                        break;
                    case Property.ToolChoice:
                        error = ReadToolChoice(ref reader, out toolChoice);
                        break;
                    case Property.ParallelToolCalls:
                        error = ReadBoolean(ref reader, "parallel_tool_calls", out var parallel);
                        gateway.ParallelToolCalls = parallel;
                        break;
                    case Property.ResponseFormat:
                        error = ReadResponseFormat(ref reader, gateway);
                        break;
                    case Property.MaxTokens:
                        error = ReadInteger(ref reader, "max_tokens", 1, int.MaxValue, out var max);
                        maxTokens = (int)max;
                        break;
                    case Property.MaxCompletionTokens:
                        error = ReadInteger(ref reader, "max_completion_tokens", 1, int.MaxValue, out var maxCompletion);
                        maxCompletionTokens = (int)maxCompletion;
                        break;
                    case Property.Temperature:
                        error = ReadNumber(ref reader, "temperature", 0, 2, out var temperature);
                        options.Temperature = temperature;
                        break;
                    case Property.TopP:
                        error = ReadNumber(ref reader, "top_p", 0, 1, out var topP);
                        options.TopP = topP;
                        break;
                    case Property.FrequencyPenalty:
                        error = ReadNumber(ref reader, "frequency_penalty", -2, 2, out var frequencyPenalty);
                        options.FrequencyPenalty = frequencyPenalty;
                        break;
                    case Property.PresencePenalty:
                        error = ReadNumber(ref reader, "presence_penalty", -2, 2, out var presencePenalty);
                        options.PresencePenalty = presencePenalty;
                        break;
                    case Property.Seed:
                        error = ReadInteger(ref reader, "seed", long.MinValue, long.MaxValue, out var seed);
                        options.Seed = seed;
                        break;
                    case Property.Stop:
                        error = ReadStop(ref reader, options.Stop);
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

        if (toolChoice is { } choice && CheckToolChoice(choice, gateway.Tools) is { } choiceError)
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

    private static OpenAiError? ReadMessages(ref Utf8JsonReader reader, RepeatedField<ChatMessage> messages)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return OpenAiError.Invalid("messages", "messages: must be an array of {role, content} objects", "invalid_type");
        }

        // The calls the assistant messages made so far: a tool message answers one of them.
        HashSet<string>? calls = null;
        var index = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var at = Field(index, null);
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return OpenAiError.Invalid(at, $"{at}: must be an object with role and content", "invalid_type");
            }

            var message = new ChatMessage();
            string? role = null;
            string? content = null;
            string? toolCallId = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("role"u8))
                {
                    reader.Read();
                    role = reader.TokenType != JsonTokenType.String ? ""
                        : reader.ValueTextEquals("user"u8) ? "user"
                        : reader.ValueTextEquals("system"u8) || reader.ValueTextEquals("developer"u8) ? "system"
                        : reader.ValueTextEquals("assistant"u8) ? "assistant"
                        : reader.ValueTextEquals("tool"u8) ? "tool"
                        : "";
                    if (role.Length == 0)
                    {
                        return OpenAiError.Invalid(Field(index, "role"), $"{Field(index, "role")}: must be \"system\", \"developer\", \"user\", \"assistant\" or \"tool\"", "invalid_value");
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
                        var error = ReadContentParts(ref reader, index, out content);
                        if (error is not null)
                        {
                            return error;
                        }
                    }
                    else if (reader.TokenType != JsonTokenType.Null)
                    {
                        return OpenAiError.Invalid(Field(index, "content"), $"{Field(index, "content")}: must be a string or an array of text parts", "invalid_type");
                    }
                }
                else if (reader.ValueTextEquals("tool_calls"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Null)
                    {
                        var error = ReadToolCalls(ref reader, index, message.ToolCalls);
                        if (error is not null)
                        {
                            return error;
                        }
                    }
                }
                else if (reader.ValueTextEquals("tool_call_id"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String || reader.ValueSpan.IsEmpty)
                    {
                        return OpenAiError.Invalid(Field(index, "tool_call_id"), $"{Field(index, "tool_call_id")}: must be a non-empty string", "invalid_type");
                    }

                    toolCallId = reader.GetString();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (role is null)
            {
                return OpenAiError.Invalid(Field(index, "role"), $"{Field(index, "role")}: is required", "missing_required_parameter");
            }

            if (message.ToolCalls.Count > 0 && role != "assistant")
            {
                return OpenAiError.Invalid(Field(index, "tool_calls"), $"{Field(index, "tool_calls")}: only assistant messages carry tool calls", "invalid_value");
            }

            if (role == "tool")
            {
                if (toolCallId is null)
                {
                    return OpenAiError.Invalid(Field(index, "tool_call_id"), $"{Field(index, "tool_call_id")}: is required in a tool message", "missing_required_parameter");
                }

                if (calls?.Contains(toolCallId) != true)
                {
                    return OpenAiError.Invalid(Field(index, "tool_call_id"),
                        $"{Field(index, "tool_call_id")}: {ErrorText.Quote(toolCallId)} answers no tool call of an earlier assistant message", "invalid_value");
                }

                message.ToolCallId = toolCallId;
            }

            // Only an assistant message that calls tools may leave its text out.
            if (content is null && !(role == "assistant" && message.ToolCalls.Count > 0))
            {
                return OpenAiError.Invalid(Field(index, "content"), $"{Field(index, "content")}: is required", "missing_required_parameter");
            }

            foreach (var call in message.ToolCalls)
            {
                (calls ??= new HashSet<string>(StringComparer.Ordinal)).Add(call.Id);
            }

            message.Role = role;
            message.Content = content ?? "";
            messages.Add(message);
            index++;
        }

        return index == 0 ? OpenAiError.Invalid("messages", "messages: must not be empty", "invalid_value") : null;
    }

    /// <summary>The array form of content: text parts only, joined by newlines.</summary>
    private static OpenAiError? ReadContentParts(ref Utf8JsonReader reader, int index, out string? content)
    {
        content = null;
        StringBuilder? joined = null;
        var part = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var field = $"{Field(index, "content")}[{part}]";
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return OpenAiError.Invalid(field, $"{field}: must be a {{type: \"text\", text}} object", "invalid_type");
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
                        return OpenAiError.Invalid($"{field}.type", $"{field}.type: only \"text\" parts are supported", "unsupported_value");
                    }
                }
                else if (reader.ValueTextEquals("text"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        return OpenAiError.Invalid($"{field}.text", $"{field}.text: must be a string", "invalid_type");
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
                return OpenAiError.Invalid(field, $"{field}: must have type \"text\" and a text", "missing_required_parameter");
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

    /// <summary>An assistant message's <c>tool_calls</c>: <c>[{id, type: "function", function: {name, arguments}}]</c>.</summary>
    private static OpenAiError? ReadToolCalls(ref Utf8JsonReader reader, int index, RepeatedField<ToolCall> calls)
    {
        var field = Field(index, "tool_calls");
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return OpenAiError.Invalid(field, $"{field}: must be an array of {{id, type: \"function\", function: {{name, arguments}}}} objects", "invalid_type");
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var at = string.Create(CultureInfo.InvariantCulture, $"{field}[{calls.Count}]");
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return OpenAiError.Invalid(at, $"{at}: must be an object with id, type and function", "invalid_type");
            }

            var call = new ToolCall();
            var sawFunction = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("id"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String || reader.ValueSpan.IsEmpty)
                    {
                        return OpenAiError.Invalid($"{at}.id", $"{at}.id: must be a non-empty string", "invalid_type");
                    }

                    call.Id = reader.GetString()!;
                }
                else if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("function"u8))
                    {
                        return OpenAiError.Invalid($"{at}.type", $"{at}.type: must be \"function\"", "invalid_value");
                    }
                }
                else if (reader.ValueTextEquals("function"u8))
                {
                    reader.Read();
                    sawFunction = true;
                    var error = ReadCalledFunction(ref reader, $"{at}.function", call);
                    if (error is not null)
                    {
                        return error;
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (call.Id.Length == 0)
            {
                return OpenAiError.Invalid($"{at}.id", $"{at}.id: is required", "missing_required_parameter");
            }

            if (!sawFunction)
            {
                return OpenAiError.Invalid($"{at}.function", $"{at}.function: is required", "missing_required_parameter");
            }

            calls.Add(call);
        }

        return null;
    }

    private static OpenAiError? ReadCalledFunction(ref Utf8JsonReader reader, string at, ToolCall call)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return OpenAiError.Invalid(at, $"{at}: must be an object with name and arguments", "invalid_type");
        }

        var sawArguments = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || reader.ValueSpan.IsEmpty)
                {
                    return OpenAiError.Invalid($"{at}.name", $"{at}.name: must be a non-empty string", "invalid_type");
                }

                call.Name = reader.GetString()!;
            }
            else if (reader.ValueTextEquals("arguments"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                {
                    return OpenAiError.Invalid($"{at}.arguments", $"{at}.arguments: must be a string holding a JSON object", "invalid_type");
                }

                sawArguments = true;
                call.ArgumentsJson = reader.GetString()!;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (call.Name.Length == 0)
        {
            return OpenAiError.Invalid($"{at}.name", $"{at}.name: is required", "missing_required_parameter");
        }

        return sawArguments ? null : OpenAiError.Invalid($"{at}.arguments", $"{at}.arguments: is required", "missing_required_parameter");
    }

    /// <summary><c>tools</c>: <c>[{type: "function", function: {name, description, parameters, strict}}]</c>.</summary>
    private static OpenAiError? ReadTools(ref Utf8JsonReader reader, RepeatedField<ToolDefinition> tools)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return OpenAiError.Invalid("tools", "tools: must be an array of {type: \"function\", function: {name, description, parameters}} objects", "invalid_type");
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var at = string.Create(CultureInfo.InvariantCulture, $"tools[{tools.Count}]");
            if (tools.Count == MaxTools)
            {
                return OpenAiError.Invalid("tools", string.Create(CultureInfo.InvariantCulture, $"tools: the limit is {MaxTools} tools"), "invalid_value");
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return OpenAiError.Invalid(at, $"{at}: must be an object with type and function", "invalid_type");
            }

            var tool = new ToolDefinition();
            var sawType = false;
            var sawFunction = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("function"u8))
                    {
                        return OpenAiError.Invalid($"{at}.type", $"{at}.type: must be \"function\"", "invalid_value");
                    }

                    sawType = true;
                }
                else if (reader.ValueTextEquals("function"u8))
                {
                    reader.Read();
                    sawFunction = true;
                    var error = ReadFunction(ref reader, $"{at}.function", tool);
                    if (error is not null)
                    {
                        return error;
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (!sawType)
            {
                return OpenAiError.Invalid($"{at}.type", $"{at}.type: is required (\"function\")", "missing_required_parameter");
            }

            if (!sawFunction)
            {
                return OpenAiError.Invalid($"{at}.function", $"{at}.function: is required", "missing_required_parameter");
            }

            if (tools.Any(t => t.Name == tool.Name))
            {
                return OpenAiError.Invalid($"{at}.function.name", $"{at}.function.name: {ErrorText.Quote(tool.Name)} is declared twice", "invalid_value");
            }

            tools.Add(tool);
        }

        return null;
    }

    private static OpenAiError? ReadFunction(ref Utf8JsonReader reader, string at, ToolDefinition tool)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return OpenAiError.Invalid(at, $"{at}: must be an object with name, description and parameters", "invalid_type");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                {
                    return OpenAiError.Invalid($"{at}.name", $"{at}.name: must be a string", "invalid_type");
                }

                tool.Name = reader.GetString()!;
                if (!IsFunctionName(tool.Name))
                {
                    return OpenAiError.Invalid($"{at}.name", $"{at}.name: must be 1 to 64 of letters, digits, '_' and '-'", "invalid_value");
                }
            }
            else if (reader.ValueTextEquals("description"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String)
                {
                    tool.Description = reader.GetString()!;
                }
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    return OpenAiError.Invalid($"{at}.description", $"{at}.description: must be a string", "invalid_type");
                }
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    tool.ParametersJson = JsonElement.ParseValue(ref reader).GetRawText();
                }
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    return OpenAiError.Invalid($"{at}.parameters", $"{at}.parameters: must be a JSON schema object", "invalid_type");
                }
            }
            else if (reader.ValueTextEquals("strict"u8))
            {
                reader.Read();
                var error = ReadBoolean(ref reader, $"{at}.strict", out var strict);
                if (error is not null)
                {
                    return error;
                }

                tool.Strict = strict;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return tool.Name.Length == 0 ? OpenAiError.Invalid($"{at}.name", $"{at}.name: is required", "missing_required_parameter") : null;
    }

    /// <summary><c>tool_choice</c>: "auto", "none", "required", or <c>{type: "function", function: {name}}</c>.</summary>
    private static OpenAiError? ReadToolChoice(ref Utf8JsonReader reader, out ToolChoice? choice)
    {
        choice = null;
        if (reader.TokenType == JsonTokenType.String)
        {
            if (reader.ValueTextEquals("auto"u8) || reader.ValueTextEquals("none"u8) || reader.ValueTextEquals("required"u8))
            {
                choice = new ToolChoice(reader.GetString()!, Named: false);
                return null;
            }

            return OpenAiError.Invalid("tool_choice", "tool_choice: must be \"auto\", \"none\", \"required\" or {type: \"function\", function: {name}}", "invalid_value");
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return OpenAiError.Invalid("tool_choice", "tool_choice: must be a string or an object", "invalid_type");
        }

        string? name = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("function"u8))
                {
                    return OpenAiError.Invalid("tool_choice.type", "tool_choice.type: must be \"function\"", "unsupported_value");
                }
            }
            else if (reader.ValueTextEquals("function"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    return OpenAiError.Invalid("tool_choice.function", "tool_choice.function: must be an object with a name", "invalid_type");
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("name"u8))
                    {
                        reader.Read();
                        if (reader.TokenType != JsonTokenType.String)
                        {
                            return OpenAiError.Invalid("tool_choice.function.name", "tool_choice.function.name: must be a string", "invalid_type");
                        }

                        name = reader.GetString();
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (string.IsNullOrEmpty(name))
        {
            return OpenAiError.Invalid("tool_choice.function.name", "tool_choice.function.name: is required", "missing_required_parameter");
        }

        choice = new ToolChoice(name, Named: true);
        return null;
    }

    /// <summary>A choice of a tool needs tools, and a named one must be among them.</summary>
    private static OpenAiError? CheckToolChoice(ToolChoice choice, RepeatedField<ToolDefinition> tools)
    {
        if (!choice.Named)
        {
            return choice.Value == "required" && tools.Count == 0
                ? OpenAiError.Invalid("tool_choice", "tool_choice: \"required\" needs tools", "invalid_value")
                : null;
        }

        if (tools.All(t => t.Name != choice.Value))
        {
            return OpenAiError.Invalid("tool_choice.function.name", $"tool_choice.function.name: {ErrorText.Quote(choice.Value)} is not one of the request's tools", "invalid_value");
        }

        // The gateway request names a chosen tool where it would otherwise say auto, none or required.
        return choice.Value is "auto" or "none" or "required"
            ? OpenAiError.Invalid("tool_choice.function.name", $"tool_choice.function.name: a tool named {ErrorText.Quote(choice.Value)} cannot be chosen by name; rename it", "unsupported_value")
            : null;
    }

    /// <summary><c>response_format</c>: <c>{type: "text"}</c>, <c>{type: "json_object"}</c> or <c>{type: "json_schema", json_schema: {name, schema, strict}}</c>.</summary>
    private static OpenAiError? ReadResponseFormat(ref Utf8JsonReader reader, GatewayRequest request)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return OpenAiError.Invalid("response_format", "response_format: must be an object with a type", "invalid_type");
        }

        string? type = null;
        var sawSchema = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                type = reader.TokenType != JsonTokenType.String ? ""
                    : reader.ValueTextEquals("text"u8) ? "text"
                    : reader.ValueTextEquals("json_object"u8) ? "json_object"
                    : reader.ValueTextEquals("json_schema"u8) ? "json_schema"
                    : "";
                if (type.Length == 0)
                {
                    return OpenAiError.Invalid("response_format.type", "response_format.type: must be \"text\", \"json_object\" or \"json_schema\"", "invalid_value");
                }
            }
            else if (reader.ValueTextEquals("json_schema"u8))
            {
                reader.Read();
                sawSchema = true;
                var error = ReadJsonSchema(ref reader, request);
                if (error is not null)
                {
                    return error;
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (type is null)
        {
            return OpenAiError.Invalid("response_format.type", "response_format.type: is required", "missing_required_parameter");
        }

        if (type == "json_schema")
        {
            request.ResponseFormat = "json";
            return sawSchema
                ? null
                : OpenAiError.Invalid("response_format.json_schema", "response_format.json_schema: is required with type \"json_schema\"", "missing_required_parameter");
        }

        // A json_schema beside another type is not asked for.
        request.JsonSchema = "";
        request.JsonSchemaName = "";
        request.JsonSchemaStrict = false;
        request.ResponseFormat = type == "json_object" ? "json" : "";
        return null;
    }

    private static OpenAiError? ReadJsonSchema(ref Utf8JsonReader reader, GatewayRequest request)
    {
        const string at = "response_format.json_schema";
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return OpenAiError.Invalid(at, $"{at}: must be an object with name and schema", "invalid_type");
        }

        var name = "";
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || !IsFunctionName(name = reader.GetString()!))
                {
                    return OpenAiError.Invalid($"{at}.name", $"{at}.name: must be 1 to 64 of letters, digits, '_' and '-'", "invalid_value");
                }
            }
            else if (reader.ValueTextEquals("schema"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    request.JsonSchema = JsonElement.ParseValue(ref reader).GetRawText();
                }
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    return OpenAiError.Invalid($"{at}.schema", $"{at}.schema: must be a JSON schema object", "invalid_type");
                }
            }
            else if (reader.ValueTextEquals("strict"u8))
            {
                reader.Read();
                var error = ReadBoolean(ref reader, $"{at}.strict", out var strict);
                if (error is not null)
                {
                    return error;
                }

                request.JsonSchemaStrict = strict;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (name.Length == 0)
        {
            return OpenAiError.Invalid($"{at}.name", $"{at}.name: is required", "missing_required_parameter");
        }

        request.JsonSchemaName = name;
        return null;
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
                    var error = ReadBoolean(ref reader, "stream_options.include_usage", out var includeUsage);
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

    /// <summary><c>stop</c>: one string or up to <see cref="MaxStopSequences"/> of them, none empty.</summary>
    private static OpenAiError? ReadStop(ref Utf8JsonReader reader, RepeatedField<string> stop)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            if (reader.ValueSpan.IsEmpty)
            {
                return OpenAiError.Invalid("stop", "stop: must not be empty", "invalid_value");
            }

            stop.Add(reader.GetString()!);
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return OpenAiError.Invalid("stop", "stop: must be a string or an array of strings", "invalid_type");
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var at = string.Create(CultureInfo.InvariantCulture, $"stop[{stop.Count}]");
            if (stop.Count == MaxStopSequences)
            {
                return OpenAiError.Invalid("stop", string.Create(CultureInfo.InvariantCulture, $"stop: the limit is {MaxStopSequences} sequences"), "invalid_value");
            }

            if (reader.TokenType != JsonTokenType.String || reader.ValueSpan.IsEmpty)
            {
                return OpenAiError.Invalid(at, $"{at}: must be a non-empty string", "invalid_type");
            }

            stop.Add(reader.GetString()!);
        }

        return null;
    }

    private static OpenAiError? ReadBoolean(ref Utf8JsonReader reader, string field, out bool value)
    {
        value = reader.TokenType == JsonTokenType.True;
        return reader.TokenType is JsonTokenType.True or JsonTokenType.False ? null : OpenAiError.Invalid(field, $"{field}: must be a boolean", "invalid_type");
    }

    private static OpenAiError? ReadNumber(ref Utf8JsonReader reader, string field, double min, double max, out double value)
    {
        value = 0;
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out value))
        {
            return OpenAiError.Invalid(field, $"{field}: must be a number", "invalid_type");
        }

        return value >= min && value <= max
            ? null
            : OpenAiError.Invalid(field, string.Create(CultureInfo.InvariantCulture, $"{field}: must be from {min} to {max}"), "invalid_value");
    }

    private static OpenAiError? ReadInteger(ref Utf8JsonReader reader, string field, long min, long max, out long value)
    {
        value = 0;
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out value))
        {
            return OpenAiError.Invalid(field, $"{field}: must be an integer", "invalid_type");
        }

        return value >= min && value <= max
            ? null
            : OpenAiError.Invalid(field, string.Create(CultureInfo.InvariantCulture, $"{field}: must be from {min} to {max}"), "invalid_value");
    }

    /// <summary>OpenAI's rule for function and schema names: 1 to 64 of a-z, A-Z, 0-9, '_' and '-'.</summary>
    private static bool IsFunctionName(string value)
    {
        if (value.Length is 0 or > 64)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    private static string Field(int index, string? name) => name is null
        ? string.Create(CultureInfo.InvariantCulture, $"messages[{index}]")
        : string.Create(CultureInfo.InvariantCulture, $"messages[{index}].{name}");

    /// <summary>A tool choice as read: "auto", "none" or "required", or a tool's name.</summary>
    private readonly record struct ToolChoice(string Value, bool Named);
}
