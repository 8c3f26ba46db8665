using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning.Dapr;

/// <summary>One agent of one tenant: the unit the learning state is kept in.</summary>
internal readonly record struct AgentId(string Tenant, string Agent);

/// <summary>
/// The value under <c>learning/index</c>: every agent with a document. An agent is listed before its document
/// is first written, so loading never misses one; a listed agent whose document is missing is skipped.
/// </summary>
internal sealed class AgentIndex
{
    public List<AgentId> Agents { get; set; } = [];
}

/// <summary>The value under an agent's key: everything the learning service keeps about that agent.</summary>
internal sealed class AgentDocument
{
    public List<StoredArm> Arms { get; set; } = [];

    /// <summary>In the order they were put, as the embedded store returns them.</summary>
    [JsonConverter(typeof(ProtobufListConverter<Experiment>))]
    public List<Experiment> Experiments { get; set; } = [];

    public List<StoredTally> Tallies { get; set; } = [];

    /// <summary>Selections ever recorded for the agent: the newest is under history key number this minus one.</summary>
    public long SelectionsRecorded { get; set; }

    /// <summary>Ids of the outcomes applied to this agent, the oldest first.</summary>
    public List<string> AppliedIds { get; set; } = [];

    public void PutArm(ArmKey key, ArmState state)
    {
        var stored = new StoredArm(key.TaskType, key.Context, key.Provider, key.Model, state);
        var at = Arms.FindIndex(a => a.TaskType == key.TaskType && a.Context == key.Context && a.Provider == key.Provider && a.Model == key.Model);
        if (at >= 0)
        {
            Arms[at] = stored;
        }
        else
        {
            Arms.Add(stored);
        }
    }

    public void PutTally(VariantKey key, VariantTally tally)
    {
        Tallies.RemoveAll(t => t.Experiment == key.Experiment && t.Variant == key.Variant);
        Tallies.Add(new StoredTally(key.Experiment, key.Variant, tally));
    }

    /// <summary>Removes the experiment and its variants' tallies.</summary>
    /// <returns>Whether the experiment was there, and whether anything changed (its tallies included).</returns>
    public (bool Removed, bool Changed) RemoveExperiment(string name)
    {
        var tallies = Tallies.RemoveAll(t => t.Experiment == name);
        var experiments = Experiments.RemoveAll(e => e.Name == name);
        return (experiments > 0, experiments + tallies > 0);
    }
}

internal sealed record StoredArm(string TaskType, string Context, string Provider, string Model, ArmState State);

internal sealed record StoredTally(string Experiment, string Variant, VariantTally Tally);

/// <summary>Protobuf messages as stored: their canonical JSON, with protobuf's own field names and value formats.</summary>
internal static class ProtobufJson
{
    // Skips fields it does not know: during a rolling upgrade, replicas of the previous version read what newer ones wrote.
    public static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
}

/// <summary>Writes protobuf messages into a document as their canonical JSON, so the stored value stays JSON from end to end.</summary>
internal sealed class ProtobufListConverter<T> : JsonConverter<List<T>>
    where T : IMessage<T>, new()
{
    public override List<T> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var document = JsonDocument.ParseValue(ref reader);
        return [.. document.RootElement.EnumerateArray().Select(element => ProtobufJson.Parser.Parse<T>(element.GetRawText()))];
    }

    public override void Write(Utf8JsonWriter writer, List<T> value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var message in value)
        {
            writer.WriteRawValue(JsonFormatter.Default.Format(message), skipInputValidation: true);
        }

        writer.WriteEndArray();
    }
}

// Named floating-point literals: an arm's sums must not make its agent's document unwritable should one
// ever be NaN or infinite.
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(AgentIndex))]
[JsonSerializable(typeof(AgentDocument))]
internal sealed partial class LearningStateJsonContext : JsonSerializerContext;
