using System.Text.Json;
using Microsoft.Extensions.AI;
using PersistentAgents.Gateway.Providers;
using PersistentAgents.Contracts.V1;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AiChatRole = Microsoft.Extensions.AI.ChatRole;
using ChatMessage = PersistentAgents.Contracts.V1.ChatMessage;

namespace PersistentAgents.Gateway;

/// <summary>
/// A gateway request in Microsoft.Extensions.AI's terms, which every provider adapter reads: the conversation with
/// its tool calls and tool results, and one <see cref="ChatOptions"/> with the generation settings, tools, tool
/// choice and response format.
/// </summary>
public static class GatewayChatOptions
{
    /// <summary>Key of <see cref="ChatOptions.AdditionalProperties"/> holding the end user the caller acts for.</summary>
    public const string EndUserKey = "user";

    /// <summary>Arguments as the wire carries them: compact JSON.</summary>
    private static readonly JsonSerializerOptions CompactJson = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    /// <summary>The key the Microsoft.Extensions.AI OpenAI connector reads for strict schemas (of tools and reply).</summary>
    private const string StrictKey = "strict";

    public static ChatOptions For(GatewayRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var options = new ChatOptions();
        if (request.Options is { } settings)
        {
            options.MaxOutputTokens = settings.HasMaxOutputTokens ? settings.MaxOutputTokens : null;
            options.Temperature = settings.HasTemperature ? (float)settings.Temperature : null;
            options.TopP = settings.HasTopP ? (float)settings.TopP : null;
            options.Seed = settings.HasSeed ? settings.Seed : null;
            options.FrequencyPenalty = settings.HasFrequencyPenalty ? (float)settings.FrequencyPenalty : null;
            options.PresencePenalty = settings.HasPresencePenalty ? (float)settings.PresencePenalty : null;
            options.StopSequences = settings.Stop.Count > 0 ? [.. settings.Stop] : null;
            if (settings.User.Length > 0)
            {
                (options.AdditionalProperties ??= [])[EndUserKey] = settings.User;
            }
        }

        if (GatewayService.FormatOf(request) == ReplyFormat.Json)
        {
            options.ResponseFormat = request.JsonSchema.Length == 0
                ? ChatResponseFormat.Json
                : ChatResponseFormat.ForJsonSchema(ParseSchema(request.JsonSchema), NullIfEmpty(request.JsonSchemaName));
            if (request.JsonSchemaStrict)
            {
                (options.AdditionalProperties ??= [])[StrictKey] = true;
            }
        }

        if (request.Tools.Count > 0)
        {
            options.Tools = [.. request.Tools.Select(t => (AITool)new DeclaredTool(t))];
            options.ToolMode = request.ToolChoice switch
            {
                "" or "auto" => ChatToolMode.Auto,
                "none" => ChatToolMode.None,
                "required" => ChatToolMode.RequireAny,
                var name => ChatToolMode.RequireSpecific(name),
            };
            options.AllowMultipleToolCalls = request.HasParallelToolCalls ? request.ParallelToolCalls : null;
        }

        return options;
    }

    /// <summary>The conversation: tool calls on assistant messages, results on tool messages.</summary>
    public static List<AiChatMessage> MessagesOf(GatewayRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var messages = new List<AiChatMessage>(request.Messages.Count);
        foreach (var message in request.Messages)
        {
            messages.Add(ToAiMessage(message));
        }

        return messages;
    }

    /// <summary>The call as OpenAI writes it: arguments as one JSON object text.</summary>
    public static ToolCall ToToolCall(FunctionCallContent call)
    {
        ArgumentNullException.ThrowIfNull(call);
        return new ToolCall
        {
            Id = call.CallId,
            Name = call.Name,
            ArgumentsJson = JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>(), CompactJson),
        };
    }

    private static AiChatMessage ToAiMessage(ChatMessage message)
    {
        switch (message.Role)
        {
            case "system":
                return new AiChatMessage(AiChatRole.System, message.Content);
            case "tool":
                return new AiChatMessage(AiChatRole.Tool, [new FunctionResultContent(message.ToolCallId, message.Content)]);
            case "assistant" when message.ToolCalls.Count > 0:
                var contents = new List<AIContent>(message.ToolCalls.Count + 1);
                if (message.Content.Length > 0)
                {
                    contents.Add(new TextContent(message.Content));
                }

                contents.AddRange(message.ToolCalls.Select(c => new FunctionCallContent(c.Id, c.Name, ArgumentsOf(c.ArgumentsJson))));
                return new AiChatMessage(AiChatRole.Assistant, contents);
            case "assistant":
                return new AiChatMessage(AiChatRole.Assistant, message.Content);
            default:
                return new AiChatMessage(AiChatRole.User, message.Content);
        }
    }

    private static Dictionary<string, object?> ArgumentsOf(string json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return [];
        }

        using var document = JsonDocument.Parse(json);
        return document.RootElement.ValueKind == JsonValueKind.Object
            ? document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
            : [];
    }

    private static JsonElement ParseSchema(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    /// <summary>A tool the caller declared: a function the model may call, never one the gateway runs.</summary>
    private sealed class DeclaredTool(ToolDefinition definition) : AIFunctionDeclaration
    {
        private static readonly JsonElement NoArguments = ParseSchema("""{"type":"object","properties":{}}""");

        private readonly JsonElement _schema = definition.ParametersJson.Length == 0 ? NoArguments : ParseSchema(definition.ParametersJson);

        public override string Name => definition.Name;

        public override string Description => definition.Description;

        public override JsonElement JsonSchema => _schema;

        public override IReadOnlyDictionary<string, object?> AdditionalProperties { get; } =
            definition.Strict ? new Dictionary<string, object?> { [StrictKey] = true } : new Dictionary<string, object?>();
    }
}
