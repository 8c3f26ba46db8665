using System.Globalization;
using System.Text.Json;
using Google.Protobuf.Collections;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary><c>tools</c> and <c>tool_choice</c>, each problem named by its field (<c>tools[0].function.name</c>).</summary>
internal static class OpenAiToolsReader
{
    /// <summary>OpenAI's own limit on the number of tools.</summary>
    public const int MaxTools = 128;

    /// <summary><c>tools</c>: <c>[{type: "function", function: {name, description, parameters, strict}}]</c>.</summary>
    internal static OpenAiError? ReadTools(ref Utf8JsonReader reader, RepeatedField<ToolDefinition> tools)
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

    internal static OpenAiError? ReadFunction(ref Utf8JsonReader reader, string at, ToolDefinition tool)
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
                if (!OpenAiParameterReader.IsFunctionName(tool.Name))
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
                var error = OpenAiParameterReader.ReadBoolean(ref reader, $"{at}.strict", out var strict);
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
    internal static OpenAiError? ReadToolChoice(ref Utf8JsonReader reader, out ToolChoice? choice)
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
    internal static OpenAiError? CheckToolChoice(ToolChoice choice, RepeatedField<ToolDefinition> tools)
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

    /// <summary>A tool choice as read: "auto", "none" or "required", or a tool's name.</summary>
    internal readonly record struct ToolChoice(string Value, bool Named);
}
