using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace PersistentAgents.Gateway;

/// <summary>
/// Whether a reply asked for as JSON is one: it parses as a single JSON value and, when the request gave a schema,
/// satisfies it (JSON Schema 2020-12 by default, through JsonSchema.Net). A reply that fails is that candidate's
/// failure, so the gateway tries the next one instead of handing the caller something its parser will refuse.
/// </summary>
internal static class JsonReplyCheck
{
    private const int MaxReportedErrors = 3;

    /// <summary>What is wrong with <paramref name="reply"/>; null when it is valid.</summary>
    public static string? ProblemOf(string reply, string schemaJson)
    {
        JsonNode? document;
        try
        {
            document = JsonNode.Parse(reply);
        }
        catch (JsonException e)
        {
            return $"the reply is not JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})";
        }

        if (schemaJson.Length == 0)
        {
            return null;
        }

        // Options of its own per request, so a schema's $id lands in a registry no other request shares.
        var schema = JsonSchema.FromText(schemaJson);
        var results = schema.Evaluate(document, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (results.IsValid)
        {
            return null;
        }

        var errors = (results.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{Location(d.InstanceLocation.ToString())}: {e.Value}"))
            .Distinct(StringComparer.Ordinal)
            .Take(MaxReportedErrors)
            .ToList();
        return $"the reply does not satisfy the schema ({(errors.Count == 0 ? "invalid" : string.Join("; ", errors))})";
    }

    /// <summary>Whether <paramref name="schemaJson"/> is a schema JsonSchema.Net can build; the message says why not.</summary>
    public static string? SchemaProblemOf(string schemaJson)
    {
        try
        {
            JsonSchema.FromText(schemaJson);
            return null;
        }
        catch (Exception e) when (e is JsonException or JsonSchemaException or ArgumentException or InvalidOperationException)
        {
            return e.Message;
        }
    }

    private static string Location(string pointer) => pointer.Length == 0 ? "(root)" : pointer;
}
