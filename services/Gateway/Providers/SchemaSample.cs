using System.Text.Json;
using System.Text.Json.Nodes;

namespace PersistentAgents.Gateway.Providers;

/// <summary>
/// A value that satisfies a JSON schema of the kinds requests declare (objects of typed properties, enums,
/// arrays, consts, unions): what a simulated model answers when asked for schema-shaped JSON or tool arguments.
/// Every declared property is written, so strict schemas (all properties required) are met too.
/// </summary>
internal static class SchemaSample
{
    private const int MaxDepth = 16;

    public static JsonNode? Of(JsonElement schema, string text) => Of(schema, text, 0);

    private static JsonNode? Of(JsonElement schema, string text, int depth)
    {
        if (schema.ValueKind != JsonValueKind.Object || depth > MaxDepth)
        {
            return null;
        }

        if (schema.TryGetProperty("const", out var constant))
        {
            return JsonNode.Parse(constant.GetRawText());
        }

        if (schema.TryGetProperty("enum", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
        {
            return JsonNode.Parse(choices[0].GetRawText());
        }

        foreach (var union in (string[])["anyOf", "oneOf", "allOf"])
        {
            if (schema.TryGetProperty(union, out var options) && options.ValueKind == JsonValueKind.Array)
            {
                // The first branch that is not null: a sample of it satisfies the union.
                var branch = options.EnumerateArray().FirstOrDefault(o => TypeOf(o) != "null");
                return branch.ValueKind == JsonValueKind.Undefined ? null : Of(branch, text, depth + 1);
            }
        }

        switch (TypeOf(schema))
        {
            case "object":
                var value = new JsonObject();
                if (schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
                {
                    foreach (var property in properties.EnumerateObject())
                    {
                        value[property.Name] = Of(property.Value, text, depth + 1);
                    }
                }

                return value;
            case "array":
                var items = new JsonArray();
                if (schema.TryGetProperty("items", out var item))
                {
                    items.Add(Of(item, text, depth + 1));
                }

                return items;
            case "integer":
                return JsonValue.Create(Math.Max(Bound(schema, "minimum") ?? 1, 1));
            case "number":
                return JsonValue.Create(Bound(schema, "minimum") ?? 0.5);
            case "boolean":
                return JsonValue.Create(true);
            case "null":
                return null;
            default:
                return JsonValue.Create(text.Length == 0 ? "simulated" : text);
        }
    }

    /// <summary>The schema's type: its "type", the first non-null one of a type list, or "object" when it has properties.</summary>
    private static string? TypeOf(JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (schema.TryGetProperty("type", out var type))
        {
            if (type.ValueKind == JsonValueKind.String)
            {
                return type.GetString();
            }

            if (type.ValueKind == JsonValueKind.Array)
            {
                var named = type.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()).ToList();
                return named.FirstOrDefault(t => t != "null") ?? named.FirstOrDefault();
            }
        }

        return schema.TryGetProperty("properties", out _) ? "object" : null;
    }

    private static double? Bound(JsonElement schema, string name) =>
        schema.TryGetProperty(name, out var bound) && bound.ValueKind == JsonValueKind.Number ? bound.GetDouble() : null;
}
