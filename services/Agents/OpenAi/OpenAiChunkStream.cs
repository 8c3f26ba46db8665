using Microsoft.AspNetCore.Http;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// One streamed chat completion in OpenAI's wire format: <c>data: {chat.completion.chunk}</c> events that
/// share one id, created time and model; the first carries the assistant role, the last the finish reason;
/// with usage asked for, a chunk with no choices and the usage follows; <c>data: [DONE]</c> ends it. Each
/// event is flushed as it is written. Nothing is sent, not even the status, until <see cref="StartAsync"/>,
/// so that a failure before the first delta can still be an ordinary error response.
/// </summary>
internal sealed class OpenAiChunkStream(HttpResponse response, long created, bool includeUsage)
{
    private readonly string _id = OpenAiChatReplyWriter.NewId();
    private string _model = "";

    public bool Started { get; private set; }

    /// <summary>Text deltas sent so far.</summary>
    public bool SentText { get; private set; }

    /// <summary>Tool calls sent so far, by index.</summary>
    public int SentToolCalls { get; private set; }

    /// <summary>
    /// Sends the headers (the arm that answers as <c>x-pa-*</c> when it is known) and the first chunk, with the
    /// assistant role and empty content.
    /// </summary>
    public Task StartAsync(string model, ArmRef? arm, bool simulated, bool cacheHit, CancellationToken cancellationToken)
    {
        Started = true;
        _model = model;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        var headers = response.Headers;
        headers.CacheControl = "no-cache";
        if (arm is not null)
        {
            headers["x-pa-provider"] = arm.Provider;
            headers["x-pa-cache-hit"] = cacheHit ? "true" : "false";
            headers["x-pa-simulated"] = simulated ? "true" : "false";
        }

        var writer = OpenAiJson.Rent(out var buffer);
        OpenAiChatReplyWriter.StartChunk(writer, _id, created, _model);
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteString("content"u8, ""u8);
        OpenAiChatReplyWriter.EndChunk(writer, finishReason: null, includeUsage);
        return OpenAiJson.SendEventAsync(response, writer, buffer, cancellationToken);
    }

    public Task SendTextAsync(string text, CancellationToken cancellationToken)
    {
        SentText = true;
        var writer = OpenAiJson.Rent(out var buffer);
        OpenAiChatReplyWriter.StartChunk(writer, _id, created, _model);
        writer.WriteString("content"u8, text);
        OpenAiChatReplyWriter.EndChunk(writer, finishReason: null, includeUsage);
        return OpenAiJson.SendEventAsync(response, writer, buffer, cancellationToken);
    }

    /// <summary>A whole tool call (id, name and complete arguments) at its index among the reply's calls.</summary>
    public Task SendToolCallAsync(int index, ToolCall call, CancellationToken cancellationToken)
    {
        SentToolCalls = Math.Max(SentToolCalls, index + 1);
        var writer = OpenAiJson.Rent(out var buffer);
        OpenAiChatReplyWriter.StartChunk(writer, _id, created, _model);
        writer.WriteStartArray("tool_calls"u8);
        OpenAiChatReplyWriter.WriteToolCall(writer, call, index);
        writer.WriteEndArray();
        OpenAiChatReplyWriter.EndChunk(writer, finishReason: null, includeUsage);
        return OpenAiJson.SendEventAsync(response, writer, buffer, cancellationToken);
    }

    /// <summary>The last chunk (an empty delta and the finish reason), the usage chunk when asked for, and <c>[DONE]</c>.</summary>
    public async Task FinishAsync(string finishReason, OpenAiUsage usage, CancellationToken cancellationToken)
    {
        var writer = OpenAiJson.Rent(out var buffer);
        OpenAiChatReplyWriter.StartChunk(writer, _id, created, _model);
        OpenAiChatReplyWriter.EndChunk(writer, finishReason, includeUsage);
        await OpenAiJson.SendEventAsync(response, writer, buffer, cancellationToken);
        if (includeUsage)
        {
            writer = OpenAiJson.Rent(out buffer);
            OpenAiChatReplyWriter.WriteUsageChunk(writer, _id, created, _model, usage);
            await OpenAiJson.SendEventAsync(response, writer, buffer, cancellationToken);
        }

        await OpenAiJson.SendDoneAsync(response, cancellationToken);
    }

    /// <summary>
    /// Ends a stream that broke after it started: one <c>data: {"error": ...}</c> event, and neither a finish
    /// reason nor <c>[DONE]</c>, so that no client takes the partial reply for a whole one.
    /// </summary>
    public Task FailAsync(OpenAiError error, CancellationToken cancellationToken)
    {
        var writer = OpenAiJson.Rent(out var buffer);
        error.WriteTo(writer);
        return OpenAiJson.SendEventAsync(response, writer, buffer, cancellationToken);
    }
}
