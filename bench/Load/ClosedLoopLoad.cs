using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;

namespace PersistentAgents.Bench.Load;

/// <summary>One measured window: what every request that started and finished inside it answered, and how long it took.</summary>
public sealed record WindowResult(
    int Clients,
    double Seconds,
    double[] SuccessLatenciesMs,
    double[] FailureLatenciesMs,
    IReadOnlyDictionary<string, int> Outcomes)
{
    public int Requests => Outcomes.Values.Sum();

    public int Successes => SuccessLatenciesMs.Length;

    public double SuccessRate => Requests == 0 ? double.NaN : (double)Successes / Requests;

    public double CompletesPerSecond => Successes / Seconds;

    public double RequestsPerSecond => Requests / Seconds;

    /// <summary>Nearest-rank percentile of a sorted array.</summary>
    public static double Percentile(double[] sorted, double p) => sorted.Length == 0
        ? double.NaN
        : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>
/// Closed-loop clients: each sends a complete for a random agent, waits for the answer and sends the next,
/// so the offered load is whatever the host can take with that many requests in flight. Agents are drawn
/// uniformly from agent-0000 to agent-(<paramref name="agentCount"/> - 1) unless <paramref name="agentOf"/> draws them.
/// </summary>
public sealed class ClosedLoopLoad(Uri baseAddress, int agentCount, Func<Random, string>? agentOf = null) : IDisposable
{
    private static readonly string[] TaskTypes = ["email_routing", "legal_triage", "orders"];
    private static readonly string[] Topics = ["invoice", "contract", "refund", "shipment", "password", "holiday", "pricing", "outage"];

    private readonly HttpClient _client = new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = 1024,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = false,
    })
    {
        BaseAddress = baseAddress,
        Timeout = TimeSpan.FromSeconds(30),
    };

    private readonly Func<Random, string> _agentOf = agentOf ?? (random => $"agent-{random.Next(agentCount):D4}");

    public void Dispose() => _client.Dispose();

    /// <summary>
    /// Runs <paramref name="clients"/> clients for <paramref name="warmUp"/> then <paramref name="measured"/>;
    /// <paramref name="windowStarted"/> runs when the measured window opens, so that the caller can sample the host then.
    /// Runs with another <paramref name="seed"/> send other prompts.
    /// </summary>
    public async Task<WindowResult> RunAsync(int clients, TimeSpan warmUp, TimeSpan measured, Action windowStarted, int seed = 0)
    {
        var start = Stopwatch.GetTimestamp();
        var windowStart = start + (long)(warmUp.TotalSeconds * Stopwatch.Frequency);
        var windowEnd = windowStart + (long)(measured.TotalSeconds * Stopwatch.Frequency);
        var workers = Enumerable.Range(0, clients).Select(c => Task.Run(() => ClientAsync(c, (seed * clients) + c, windowStart, windowEnd))).ToArray();
        await Task.Delay(warmUp);
        windowStarted();
        var perClient = await Task.WhenAll(workers);

        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (outcome, count) in perClient.SelectMany(c => c.Outcomes))
        {
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + count;
        }

        double[] successes = [.. perClient.SelectMany(c => c.Successes)];
        double[] failures = [.. perClient.SelectMany(c => c.Failures)];
        Array.Sort(successes);
        Array.Sort(failures);
        return new WindowResult(clients, measured.TotalSeconds, successes, failures, outcomes);
    }

    private async Task<(List<double> Successes, List<double> Failures, Dictionary<string, int> Outcomes)> ClientAsync(
        int client, int randomSeed, long windowStart, long windowEnd)
    {
        var successes = new List<double>();
        var failures = new List<double>();
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        var random = new Random(randomSeed);
        for (var i = 0; Stopwatch.GetTimestamp() < windowEnd; i++)
        {
            var agent = _agentOf(random);
            var topic = Topics[random.Next(Topics.Length)];
            var sent = Stopwatch.GetTimestamp();
            var outcome = await CompleteAsync(agent, new
            {
                prompt = $"Request {i} from client {client} about the {topic} of customer {random.Next(500)}: please route and summarise it",
                taskType = TaskTypes[random.Next(TaskTypes.Length)],
                sessionId = $"client-{client}",
            });
            var done = Stopwatch.GetTimestamp();
            // Only requests wholly inside the window count: the warm-up and the tail are left out.
            if (sent < windowStart || done > windowEnd)
            {
                continue;
            }

            var latencyMs = (done - sent) * 1000.0 / Stopwatch.Frequency;
            (outcome == "HTTP 200" ? successes : failures).Add(latencyMs);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        return (successes, failures, outcomes);
    }

    private async Task<string> CompleteAsync(string agent, object body)
    {
        try
        {
            using var response = await _client.PostAsJsonAsync($"/platform/agents/{agent}/complete", body);
            await response.Content.LoadIntoBufferAsync();
            return $"HTTP {(int)response.StatusCode}";
        }
        catch (TaskCanceledException)
        {
            return "timeout";
        }
        catch (HttpRequestException e)
        {
            return e.HttpRequestError.ToString();
        }
    }

    /// <summary>True once the host answers HTTP at all (a stats request for an agent that has none is a 404).</summary>
    public async Task<bool> AnswersAsync()
    {
        using var response = await _client.GetAsync(new Uri("/platform/agents/load-probe/stats", UriKind.Relative));
        return response.StatusCode is HttpStatusCode.OK or HttpStatusCode.NotFound;
    }
}
