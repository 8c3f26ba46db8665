using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf.Collections;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// <c>messages</c>: roles, text content and its parts, an assistant's tool calls and the tool messages that
/// answer them, each problem named by its field (<c>messages[2].tool_call_id</c>).
/// </summary>
internal static class OpenAiMessagesReader
{
    internal static OpenAiError? ReadMessages(ref Utf8JsonReader reader, RepeatedField<ChatMessage> messages)
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
    internal static OpenAiError? ReadContentParts(ref Utf8JsonReader reader, int index, out string? content)
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
    internal static OpenAiError? ReadToolCalls(ref Utf8JsonReader reader, int index, RepeatedField<ToolCall> calls)
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

    internal static OpenAiError? ReadCalledFunction(ref Utf8JsonReader reader, string at, ToolCall call)
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

    internal static string Field(int index, string? name) => name is null
        ? string.Create(CultureInfo.InvariantCulture, $"messages[{index}]")
        : string.Create(CultureInfo.InvariantCulture, $"messages[{index}].{name}");
}
