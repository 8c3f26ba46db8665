using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// Writes the OpenAI-compatible API's JSON with a per-thread <see cref="Utf8JsonWriter"/> and buffer, and
/// sends it as a whole body or as one server-sent event. A rented writer is valid until the next await on
/// its thread, so each send copies the buffer into the response pipe before it awaits.
/// </summary>
internal static class OpenAiJson
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // Replies go to API clients, never into HTML: keep non-ASCII text readable and short.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public static Utf8JsonWriter Rent(out ArrayBufferWriter<byte> buffer)
    {
        buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        writer.Reset(buffer);
        return writer;
    }

    /// <summary>The written JSON as the whole body, with its exact Content-Length.</summary>
    public static Task SendAsync(HttpResponse response, int status, Utf8JsonWriter writer, ArrayBufferWriter<byte> buffer)
    {
        writer.Flush();
        var json = buffer.WrittenSpan;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = json.Length;
        var pipe = response.BodyWriter;
        json.CopyTo(pipe.GetSpan(json.Length));
        pipe.Advance(json.Length);
        Release(buffer);
        var flush = pipe.FlushAsync();
        return flush.IsCompletedSuccessfully ? Task.CompletedTask : flush.AsTask();
    }

    public static Task SendErrorAsync(HttpResponse response, OpenAiError error)
    {
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        var writer = Rent(out var buffer);
        error.WriteTo(writer);
        return SendAsync(response, error.Status, writer, buffer);
    }

    /// <summary>The written JSON as one event, <c>data: {json}</c> and a blank line, flushed at once.</summary>
    public static async Task SendEventAsync(HttpResponse response, Utf8JsonWriter writer, ArrayBufferWriter<byte> buffer, CancellationToken cancellationToken)
    {
        writer.Flush();
        var pipe = response.BodyWriter;
        Write(pipe, "data: "u8);
        Write(pipe, buffer.WrittenSpan);
        Write(pipe, "\n\n"u8);
        Release(buffer);
        await pipe.FlushAsync(cancellationToken);
    }

    /// <summary>The event that ends a complete stream.</summary>
    public static async Task SendDoneAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        Write(response.BodyWriter, "data: [DONE]\n\n"u8);
        await response.BodyWriter.FlushAsync(cancellationToken);
    }

    private static void Write(System.IO.Pipelines.PipeWriter pipe, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(pipe.GetSpan(bytes.Length));
        pipe.Advance(bytes.Length);
    }

    private static void Release(ArrayBufferWriter<byte> buffer)
    {
        if (buffer.Capacity > 256 * 1024)
        {
            t_buffer = null; // do not keep a large reply's buffer alive on this thread
            t_writer = null;
        }
    }
}
