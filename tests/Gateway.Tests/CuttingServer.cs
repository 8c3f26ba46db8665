using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PersistentAgents.Gateway.Tests;

/// <summary>
/// An HTTP server on 127.0.0.1 that answers one request with 200, a chunked <c>text/event-stream</c> body that
/// starts with <paramref name="prefix"/>, and then drops the connection mid-body: a provider dying mid-stream.
/// </summary>
public sealed class CuttingServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new(TimeSpan.FromSeconds(30));
    private readonly Task _serving;

    public CuttingServer(string prefix)
    {
        _listener.Start();
        _serving = ServeOnceAsync(prefix);
    }

    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _serving;
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }

        _listener.Dispose();
        _stop.Dispose();
    }

    private async Task ServeOnceAsync(string prefix)
    {
        using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
        var stream = client.GetStream();
        await ReadRequestAsync(stream, _stop.Token);
        var payload = Encoding.UTF8.GetBytes(prefix);
        var head = Encoding.ASCII.GetBytes(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nrequest-id: req_1\r\n\r\n" +
            $"{payload.Length:x}\r\n");
        await stream.WriteAsync(head, _stop.Token);
        await stream.WriteAsync(payload, _stop.Token);
        await stream.WriteAsync("\r\n"u8.ToArray(), _stop.Token);
        await stream.FlushAsync(_stop.Token);
        await Task.Delay(200, _stop.Token);
        client.Client.LingerState = new LingerOption(true, 0);
        client.Close(); // no terminating chunk: the body ends before it is complete
    }

    private static async Task ReadRequestAsync(NetworkStream stream, CancellationToken token)
    {
        var received = new List<byte>();
        var buffer = new byte[8192];
        int headerEnd;
        while ((headerEnd = IndexOf(received, "\r\n\r\n"u8.ToArray())) < 0)
        {
            var read = await stream.ReadAsync(buffer, token);
            if (read == 0)
            {
                return;
            }

            received.AddRange(buffer.AsSpan(0, read).ToArray());
        }

        var headers = Encoding.ASCII.GetString(received.ToArray(), 0, headerEnd);
        var length = headers.Split("\r\n")
            .Where(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            .Select(h => int.Parse(h["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture))
            .FirstOrDefault();
        if (headers.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            while (received.Count < headerEnd + 9 || !received.TakeLast(5).SequenceEqual("0\r\n\r\n"u8.ToArray()))
            {
                var read = await stream.ReadAsync(buffer, token);
                if (read == 0)
                {
                    return;
                }

                received.AddRange(buffer.AsSpan(0, read).ToArray());
            }

            return;
        }

        var bodyRead = received.Count - (headerEnd + 4);
        while (bodyRead < length)
        {
            var read = await stream.ReadAsync(buffer, token);
            if (read == 0)
            {
                return;
            }

            bodyRead += read;
        }
    }

    private static int IndexOf(List<byte> data, byte[] pattern)
    {
        for (var i = 0; i + pattern.Length <= data.Count; i++)
        {
            var match = true;
            for (var j = 0; j < pattern.Length && match; j++)
            {
                match = data[i + j] == pattern[j];
            }

            if (match)
            {
                return i;
            }
        }

        return -1;
    }
}
