using System.Globalization;
using System.Text.Json;
using Google.Protobuf.Collections;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>The body's other typed parameters (<c>response_format</c>, <c>stop</c>, numbers and booleans), each problem named by its field.</summary>
internal static class OpenAiParameterReader
{
    /// <summary>OpenAI's own limit on the number of stop sequences.</summary>
    public const int MaxStopSequences = 4;

    /// <summary><c>response_format</c>: <c>{type: "text"}</c>, <c>{type: "json_object"}</c> or <c>{type: "json_schema", json_schema: {name, schema, strict}}</c>.</summary>
    internal static OpenAiError? ReadResponseFormat(ref Utf8JsonReader reader, GatewayRequest request)
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

    internal static OpenAiError? ReadJsonSchema(ref Utf8JsonReader reader, GatewayRequest request)
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

    /// <summary><c>stop</c>: one string or up to <see cref="MaxStopSequences"/> of them, none empty.</summary>
    internal static OpenAiError? ReadStop(ref Utf8JsonReader reader, RepeatedField<string> stop)
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

    internal static OpenAiError? ReadBoolean(ref Utf8JsonReader reader, string field, out bool value)
    {
        value = reader.TokenType == JsonTokenType.True;
        return reader.TokenType is JsonTokenType.True or JsonTokenType.False ? null : OpenAiError.Invalid(field, $"{field}: must be a boolean", "invalid_type");
    }

    internal static OpenAiError? ReadNumber(ref Utf8JsonReader reader, string field, double min, double max, out double value)
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

    internal static OpenAiError? ReadInteger(ref Utf8JsonReader reader, string field, long min, long max, out long value)
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
    internal static bool IsFunctionName(string value)
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
}
