using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Npgsql;
using NpgsqlTypes;
using Autogen = Dapr.Client.Autogen.Grpc.v1;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The double's <c>bindings.postgresql</c>: runs the <c>exec</c> / <c>query</c> SQL it is sent against a real
/// PostgreSQL (PGlite with pgvector) the way Dapr's binding does with pgx — <c>sql</c> and <c>params</c> (a JSON
/// array) from the request metadata, each JSON value sent untyped so the server infers its type from the
/// statement (as pgx does after describing it), <c>query</c> answering a JSON array of row arrays
/// (timestamps as RFC 3339 strings, numbers as numbers) and <c>exec</c> the <c>rows-affected</c> metadata.
/// One connection, one statement at a time: PGlite is a single-session database.
/// </summary>
public sealed class PostgresBinding(NpgsqlConnection connection) : IBindingBackend, IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task<Autogen.InvokeBindingResponse> InvokeAsync(Autogen.InvokeBindingRequest request, CancellationToken cancellationToken)
    {
        if (request.Operation == "close")
        {
            return new Autogen.InvokeBindingResponse();
        }

        if (request.Operation is not ("exec" or "query"))
        {
            throw new BindingFailedException($"invalid operation type: {request.Operation}. Expected exec, query, or close");
        }

        if (!request.Metadata.TryGetValue("sql", out var sql) || sql.Length == 0)
        {
            throw new BindingFailedException("required metadata not set: sql");
        }

        List<JsonElement> parameters = [];
        if (request.Metadata.TryGetValue("params", out var json) && json.Length > 0)
        {
            try
            {
                using var document = JsonDocument.Parse(json);
                if (document.RootElement.ValueKind != JsonValueKind.Array)
                {
                    throw new JsonException("not an array");
                }

                parameters = document.RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
            }
            catch (JsonException e)
            {
                throw new BindingFailedException($"invalid metadata property params: failed to unserialize into an array: {e.Message}");
            }
        }

        var started = DateTimeOffset.UtcNow;
        var response = new Autogen.InvokeBindingResponse();
        response.Metadata["operation"] = request.Operation;
        response.Metadata["sql"] = sql;
        response.Metadata["start-time"] = started.ToString("O", CultureInfo.InvariantCulture);

        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var command = new NpgsqlCommand(sql, connection);
            foreach (var parameter in parameters)
            {
                command.Parameters.Add(Untyped(parameter));
            }

            if (request.Operation == "exec")
            {
                var affected = await command.ExecuteNonQueryAsync(cancellationToken);
                response.Metadata["rows-affected"] = Math.Max(affected, 0).ToString(CultureInfo.InvariantCulture);
            }
            else
            {
                response.Data = ByteString.CopyFrom(await ReadRowsAsync(command, cancellationToken));
            }
        }
        catch (PostgresException e)
        {
            throw new BindingFailedException($"error executing query: {e.MessageText} (SQLSTATE {e.SqlState})");
        }
        finally
        {
            _gate.Release();
        }

        var ended = DateTimeOffset.UtcNow;
        response.Metadata["end-time"] = ended.ToString("O", CultureInfo.InvariantCulture);
        response.Metadata["duration"] = (ended - started).ToString();
        return response;
    }

    /// <summary>Runs SQL directly against the database (for tests that look behind the binding).</summary>
    public async Task<List<object?[]>> QueryDirectAsync(string sql, params object[] parameters)
    {
        await _gate.WaitAsync();
        try
        {
            await using var command = new NpgsqlCommand(sql, connection);
            foreach (var parameter in parameters)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = parameter });
            }

            var rows = new List<object?[]>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var row = new object?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
                }

                rows.Add(row);
            }

            return rows;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await connection.DisposeAsync();
        _gate.Dispose();
    }

    /// <summary>A JSON value as pgx receives it after Go's json.Unmarshal into []any, sent as untyped text.</summary>
    private static NpgsqlParameter Untyped(JsonElement value) => new()
    {
        NpgsqlDbType = NpgsqlDbType.Unknown,
        Value = value.ValueKind switch
        {
            JsonValueKind.Null => DBNull.Value,
            JsonValueKind.String => value.GetString()!,
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Number => value.GetRawText(),
            _ => throw new BindingFailedException($"unsupported parameter {value.GetRawText()}: pgx cannot encode a JSON {value.ValueKind}"),
        },
    };

    /// <summary>Rows as Go's json.Marshal writes pgx's row values.</summary>
    private static async Task<byte[]> ReadRowsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                writer.WriteStartArray();
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    WriteValue(writer, reader.IsDBNull(i) ? null : reader.GetValue(i));
                }

                writer.WriteEndArray();
            }

            writer.WriteEndArray();
        }

        return buffer.ToArray();
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case short n: writer.WriteNumberValue(n); break;
            case int n: writer.WriteNumberValue(n); break;
            case long n: writer.WriteNumberValue(n); break;
            case float n when !float.IsFinite(n): throw Unsupported(n);
            case double n when !double.IsFinite(n): throw Unsupported(n);
            case float n: writer.WriteNumberValue(n); break;
            case double n: writer.WriteNumberValue(n); break;
            case decimal n: writer.WriteNumberValue(n); break;
            case DateTime t: writer.WriteStringValue(RfcTime(t)); break;
            case DateTimeOffset t: writer.WriteStringValue(RfcTime(t.UtcDateTime)); break;
            case byte[] bytes: writer.WriteBase64StringValue(bytes); break;
            default: writer.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }

    /// <summary>Go's encoding/json refuses NaN and infinities, so the binding fails the whole query.</summary>
    private static BindingFailedException Unsupported(double value) =>
        new($"error serializing results: json: unsupported value: {(double.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf")}");

    /// <summary>Go's RFC 3339 with nanoseconds, trailing zeros trimmed (how time.Time marshals).</summary>
    private static string RfcTime(DateTime time)
    {
        var text = new StringBuilder(time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture));
        while (text[^1] == '0')
        {
            text.Length--;
        }

        if (text[^1] == '.')
        {
            text.Length--;
        }

        return text.Append('Z').ToString();
    }
}
