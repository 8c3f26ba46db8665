using System.Text.Json;
using Google.Protobuf.Collections;
using Microsoft.AspNetCore.Http;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>Tokens and cost of a reply; the cost goes out as the extension field <c>x_pa_cost_usd</c> of OpenAI's usage object.</summary>
internal readonly record struct OpenAiUsage(long PromptTokens, long CompletionTokens, double CostUsd);

/// <summary>A finished reply in the shape both a gateway reply and an agent turn are written in.</summary>
internal sealed record OpenAiChatReply(string Model, string Text, RepeatedField<ToolCall> ToolCalls, string FinishReason, OpenAiUsage Usage);

/// <summary>
/// OpenAI's chat-completion objects: the whole <c>chat.completion</c> of a non-streamed reply, and the
/// <c>chat.completion.chunk</c>s of a streamed one (sent by <see cref="OpenAiChunkStream"/>).
/// </summary>
internal static class OpenAiChatReplyWriter
{
    /// <summary>"chatcmpl-" and 24 random hex digits, like OpenAI's ids.</summary>
    public static string NewId()
    {
        Span<byte> random = stackalloc byte[12];
        Random.Shared.NextBytes(random);
        return string.Concat("chatcmpl-", Convert.ToHexStringLower(random));
    }

    /// <summary>The finish reason the reply gave, else what its content implies.</summary>
    public static string FinishReasonOf(string finishReason, int toolCalls) =>
        finishReason.Length > 0 ? finishReason : toolCalls > 0 ? "tool_calls" : "stop";

    public static Task SendCompletionAsync(HttpResponse response, OpenAiChatReply reply, long created)
    {
        var writer = OpenAiJson.Rent(out var buffer);
        writer.WriteStartObject();
        writer.WriteString("id"u8, NewId());
        writer.WriteString("object"u8, "chat.completion"u8);
        writer.WriteNumber("created"u8, created);
        writer.WriteString("model"u8, reply.Model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("message"u8);
        writer.WriteString("role"u8, "assistant"u8);
        // Only tool calls, no text: content is null, as OpenAI sends it.
        if (reply.Text.Length == 0 && reply.ToolCalls.Count > 0)
        {
            writer.WriteNull("content"u8);
        }
        else
        {
            writer.WriteString("content"u8, reply.Text);
        }

        if (reply.ToolCalls.Count > 0)
        {
            writer.WriteStartArray("tool_calls"u8);
            for (var i = 0; i < reply.ToolCalls.Count; i++)
            {
                WriteToolCall(writer, reply.ToolCalls[i], index: null);
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
        writer.WriteNull("logprobs"u8);
        writer.WriteString("finish_reason"u8, reply.FinishReason);
        writer.WriteEndObject();
        writer.WriteEndArray();
        WriteUsage(writer, reply.Usage);
        writer.WriteEndObject();
        return OpenAiJson.SendAsync(response, StatusCodes.Status200OK, writer, buffer);
    }

    /// <summary>
    /// A chunk's head (id, object, created, model) and its one choice's <c>delta</c> opened; the caller writes
    /// the delta's fields and then <see cref="EndChunk"/>.
    /// </summary>
    public static void StartChunk(Utf8JsonWriter writer, string id, long created, string model)
    {
        WriteChunkHead(writer, id, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("delta"u8);
    }

    /// <summary>Closes the delta and the chunk, with the finish reason when this is the last one.</summary>
    public static void EndChunk(Utf8JsonWriter writer, string? finishReason, bool includeUsage)
    {
        writer.WriteEndObject();
        writer.WriteNull("logprobs"u8);
        if (finishReason is null)
        {
            writer.WriteNull("finish_reason"u8);
        }
        else
        {
            writer.WriteString("finish_reason"u8, finishReason);
        }

        writer.WriteEndObject();
        writer.WriteEndArray();
        if (includeUsage)
        {
            // With stream_options.include_usage OpenAI sends usage null on every chunk but the usage chunk.
            writer.WriteNull("usage"u8);
        }

        writer.WriteEndObject();
    }

    /// <summary>The chunk that follows the last one when usage was asked for: no choices, the usage.</summary>
    public static void WriteUsageChunk(Utf8JsonWriter writer, string id, long created, string model, OpenAiUsage usage)
    {
        WriteChunkHead(writer, id, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteEndArray();
        WriteUsage(writer, usage);
        writer.WriteEndObject();
    }

    /// <summary><c>{id, type: "function", function: {name, arguments}}</c>, in a chunk with its <c>index</c> first.</summary>
    public static void WriteToolCall(Utf8JsonWriter writer, ToolCall call, int? index)
    {
        writer.WriteStartObject();
        if (index is { } at)
        {
            writer.WriteNumber("index"u8, at);
        }

        writer.WriteString("id"u8, call.Id);
        writer.WriteString("type"u8, "function"u8);
        writer.WriteStartObject("function"u8);
        writer.WriteString("name"u8, call.Name);
        writer.WriteString("arguments"u8, call.ArgumentsJson.Length > 0 ? call.ArgumentsJson : "{}");
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteChunkHead(Utf8JsonWriter writer, string id, long created, string model)
    {
        writer.WriteStartObject();
        writer.WriteString("id"u8, id);
        writer.WriteString("object"u8, "chat.completion.chunk"u8);
        writer.WriteNumber("created"u8, created);
        writer.WriteString("model"u8, model);
    }

    private static void WriteUsage(Utf8JsonWriter writer, OpenAiUsage usage)
    {
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("prompt_tokens"u8, usage.PromptTokens);
        writer.WriteNumber("completion_tokens"u8, usage.CompletionTokens);
        writer.WriteNumber("total_tokens"u8, usage.PromptTokens + usage.CompletionTokens);
        writer.WriteNumber("x_pa_cost_usd"u8, usage.CostUsd);
        writer.WriteEndObject();
    }
}
