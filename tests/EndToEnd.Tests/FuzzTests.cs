using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Xunit.Abstractions;
using PersistentAgents.Contracts.V1;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// Hostile input on every route of the public API, over REST (malformed JSON, wrong types, huge, empty,
/// unicode, control characters, path-like names, bad keys) and gRPC (the same values in typed messages,
/// and bytes that are not protobuf): every refusal is a 4xx (or a gRPC status a caller can act on) with a
/// message, never a 5xx; the host stays up; and what was stored is whole.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string AdminKey = "fuzz-admin-key-0123456789";
    private const int Seed = 20261125;
    private static readonly string[] DataFolders = ["episodes", "vector-index"];
    private TestHost _host = null!;
    private string _key = "";

    public async Task InitializeAsync()
    {
        _host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(), "--Auth:Mode", "keys", "--Auth:AdminKey", AdminKey, "--Auth:RequestsPerMinute", "6000");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/keys") { Content = new StringContent("""{"tenant":"fuzz"}""", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await _host.Rest.SendAsync(request);
        _key = (await TestHost.ReadObjectAsync(response))["key"]!.GetValue<string>();
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static readonly string[] Names =
    [
        "", "a", "valid-agent", "..", "../etc", "..%2F..%2Fetc", "%2e%2e", "a%2Fb", "UPPER", "with space", new string('x', 65), "ünïcödé", "名前",
        "%00", "nul%00byte", "-lead", "_under", "emoji-%F0%9F%98%80", "con", "a.b", "%0Anewline", "%E2%80%AE-rtl", "a%5Cb",
    ];

    private static readonly string[] Strings =
    [
        "", " ", "hello", "\0", "\u0001\u0002\u001f\u007f", "line\nbreak\r\ttab", "🙂🙃👩‍👩‍👧", "\u202Eright-to-left", "e\u0301\u0301\u0301", "\uFFFF", "../../etc/passwd",
        "C:\\Windows\\system32", "<script>alert(1)</script>", "'; DROP TABLE agent_state; --", "{\"json\":\"in a string\"}", "%s%n%x", new string('a', 40_000),
        string.Concat(Enumerable.Repeat("长", 33_000)), "NaN", "Infinity", "-0", "1e309",
    ];

    private static readonly string[] Bodies =
    [
        "", "{", "}", "[", "[]", "null", "true", "42", "\"string\"", "{\"prompt\":}", "{\"prompt\" \"x\"}", "{'prompt':'single quotes'}", "{\"prompt\":\"x\",}",
        "{\"prompt\":\"x\"}{\"prompt\":\"y\"}", "\uFEFF{\"prompt\":\"bom\"}", "{\"prompt\":\"\\ud800\"}", "{\"prompt\":\"\\u0000\"}", "{\"a\":" + new string('[', 5000) + new string(']', 5000) + "}",
        "{\"context\":" + string.Concat(Enumerable.Repeat("{\"a\":", 200)) + "1" + new string('}', 200) + ",\"prompt\":\"deep\"}",
    ];

    private static readonly JsonNode?[] Values =
    [
        null, 0, -1, 1, 2_147_483_648L, -9_999_999_999L, 1e308, -1e-308, 0.5, true, false, "", "x", "NaN", "-Infinity", new JsonArray(), new JsonArray(1, "two", null),
        new JsonObject(), new JsonObject { ["nested"] = new JsonObject { ["deeper"] = new JsonArray(new JsonObject()) } },
    ];

    /// <summary>Every route, its method and the fields of its body.</summary>
    private static readonly (HttpMethod Method, string Path, string[] Fields)[] Routes =
    [
        (HttpMethod.Post, "/platform/agents/{agent}/complete", ["prompt", "taskType", "sessionId", "context", "noCache", "policy", "responseFormat"]),
        (HttpMethod.Post, "/platform/agents/{agent}/complete?stream=true", ["prompt", "taskType", "sessionId", "context"]),
        (HttpMethod.Get, "/platform/agents/{agent}/stats", []),
        (HttpMethod.Get, "/platform/agents/{agent}/health", []),
        (HttpMethod.Get, "/platform/agents/{agent}/memory/working?sessionId={value}", []),
        (HttpMethod.Post, "/platform/agents/{agent}/memory/recall", ["query", "topK", "minSimilarity", "taskType", "successfulOnly"]),
        (HttpMethod.Get, "/platform/agents/{agent}/memory/episodes?from={value}&to={value}&limit={value}", []),
        (HttpMethod.Get, "/platform/agents/{agent}/memory/episodes/{value}", []),
        (HttpMethod.Delete, "/platform/agents/{agent}/memory", []),
        (HttpMethod.Post, "/platform/agents/{agent}/feedback", ["interactionId", "score"]),
        (HttpMethod.Get, "/platform/agents/{agent}/learning/history?taskType={value}&limit={value}", []),
        (HttpMethod.Get, "/platform/agents/{agent}/experiments", []),
        (HttpMethod.Put, "/platform/agents/{agent}/experiments/{value}", ["taskType", "variants", "metric", "metricPolicy"]),
        (HttpMethod.Delete, "/platform/agents/{agent}/experiments/{value}", []),
        (HttpMethod.Post, "/v1/chat/completions", ["model", "messages", "temperature", "stream", "max_tokens"]),
        (HttpMethod.Get, "/v1/models", []),
    ];

    [Fact]
    public async Task Hostile_input_on_every_route_is_refused_with_a_4xx_and_a_message_never_a_5xx()
    {
        var random = new Random(Seed);
        var tried = 0;
        var byStatus = new SortedDictionary<int, int>();
        async Task TryAsync(HttpMethod method, string path, HttpContent? content, string? key)
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            if (key is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
            }

            using var response = await _host.Rest.SendAsync(request);
            var status = (int)response.StatusCode;
            var text = await response.Content.ReadAsStringAsync();
            tried++;
            byStatus[status] = byStatus.GetValueOrDefault(status) + 1;
            Assert.True(status < 500, $"{method} {path} answered {status}: {text}");
            if (status >= 400)
            {
                // A refusal says why (the router's own 404/405 for paths no route matches have no body to give).
                var routed = text.Length > 0;
                Assert.True(!routed || JsonNode.Parse(text)?["message"]?.GetValue<string>() is { Length: > 0 } || JsonNode.Parse(text)?["error"] is not null,
                    $"{method} {path} answered {status} without a message: {text}");
            }
        }

        foreach (var (method, template, fields) in Routes)
        {
            foreach (var name in Names)
            {
                await TryAsync(method, Fill(template, name, Pick(random, Strings)), Body(method, fields, random), _key);
            }

            foreach (var body in Bodies)
            {
                await TryAsync(method, Fill(template, "valid-agent", "x"), Content(method, body), _key);
            }

            foreach (var field in fields)
            {
                foreach (var value in Values.Concat(Strings.Select(s => (JsonNode?)s)))
                {
                    var body = BaseBody(fields, random);
                    body[field] = value?.DeepClone();
                    await TryAsync(method, Fill(template, "valid-agent", Pick(random, Strings)), Content(method, body.ToJsonString()), _key);
                }
            }

            foreach (var key in new[] { null, "", "pa_", "Bearer", new string('k', 10_000), "pa_%C3%A9%01", _key + "x", "Basic Zm9vOmJhcg==" })
            {
                await TryAsync(method, Fill(template, "valid-agent", "x"), Body(method, fields, random), key);
            }
        }

        var huge = new StringContent("{\"prompt\":\"" + new string('a', 2 * 1024 * 1024) + "\"}", Encoding.UTF8, "application/json");
        await TryAsync(HttpMethod.Post, "/platform/agents/valid-agent/complete", huge, _key);

        output.WriteLine($"REST inputs tried: {tried}; by status: {string.Join(", ", byStatus.Select(s => $"{s.Key}×{s.Value}"))}");
        Assert.True(tried > 1000, $"only {tried} inputs");
        await AssertUpAndWholeAsync();
    }

    [Fact]
    public async Task Hostile_grpc_messages_and_bytes_get_a_status_a_caller_can_act_on()
    {
        var random = new Random(Seed);
        var client = new Contracts.V1.Agents.AgentsClient(_host.Grpc);
        var auth = new CallOptions(new Metadata { { "authorization", $"Bearer {_key}" } });
        var tried = 0;
        var byStatus = new SortedDictionary<StatusCode, int>();
        async Task TryAsync(Func<CallOptions, Task> call)
        {
            tried++;
            try
            {
                await call(auth);
                byStatus[StatusCode.OK] = byStatus.GetValueOrDefault(StatusCode.OK) + 1;
            }
            catch (RpcException e)
            {
                byStatus[e.StatusCode] = byStatus.GetValueOrDefault(e.StatusCode) + 1;
                Assert.True(e.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.FailedPrecondition or StatusCode.ResourceExhausted
                    or StatusCode.OutOfRange or StatusCode.Unauthenticated or StatusCode.PermissionDenied or StatusCode.Cancelled,
                    $"{e.StatusCode}: {e.Status.Detail}");
                Assert.NotEmpty(e.Status.Detail);
            }
        }

        var names = Names.Select(Uri.UnescapeDataString).ToArray();
        for (var i = 0; i < 300; i++)
        {
            var name = Pick(random, names);
            var text = Pick(random, Strings);
            var context = DeepStruct(random.Next(1, 12), random.Next(0, 80));
            await TryAsync(o => client.CompleteAsync(new CompleteRequest { Agent = name, Prompt = text, TaskType = Pick(random, Strings), SessionId = Pick(random, Strings), Context = context, Policy = Pick(random, Strings), ResponseFormat = Pick(random, Strings) }, o).ResponseAsync);
            await TryAsync(o => client.RecallMemoryAsync(new AgentRecallRequest { Agent = name, Query = text, TopK = random.Next(-5, 100), MinSimilarity = Pick(random, [double.NaN, -2, 0.5, 7, double.PositiveInfinity]) }, o).ResponseAsync);
            await TryAsync(o => client.ListEpisodesAsync(new AgentEpisodesRequest { Agent = name, From = Pick(random, Strings), To = "2026-13-45", Limit = random.Next(-10, 5000) }, o).ResponseAsync);
            await TryAsync(o => client.GetEpisodeAsync(new AgentEpisodeRequest { Agent = name, InteractionId = Pick(random, Strings) }, o).ResponseAsync);
            await TryAsync(o => client.FeedbackAsync(new FeedbackRequest { Agent = name, InteractionId = Pick(random, Strings), Score = Pick(random, [double.NaN, -1, 0.5, 2, double.NegativeInfinity]) }, o).ResponseAsync);
            await TryAsync(o => client.GetLearningHistoryAsync(new LearningHistoryRequest { Agent = name, TaskType = Pick(random, Strings), Limit = random.Next(-10, 10_000) }, o).ResponseAsync);
            await TryAsync(o => client.PutExperimentAsync(new PutExperimentRequest { Agent = name, Name = Pick(random, Strings), Metric = Pick(random, Strings), Variants = { new ExperimentVariant { Name = Pick(random, Strings), Weight = random.NextDouble() * 4 - 2 } } }, o).ResponseAsync);
        }

        // Bytes that are not the message the method expects.
        var invoker = _host.Grpc.CreateCallInvoker();
        var raw = Marshallers.Create<byte[]>(b => b, b => b);
        foreach (var methodName in new[] { "Complete", "GetStats", "RecallMemory", "Feedback", "PutExperiment" })
        {
            var method = new Method<byte[], byte[]>(MethodType.Unary, "persistent_agents.v1.Agents", methodName, raw, raw);
            for (var i = 0; i < 40; i++)
            {
                var bytes = new byte[random.Next(0, 400)];
                random.NextBytes(bytes);
                await TryAsync(o => invoker.AsyncUnaryCall(method, null, o, bytes).ResponseAsync);
            }
        }

        output.WriteLine($"gRPC inputs tried: {tried}; by status: {string.Join(", ", byStatus.Select(s => $"{s.Key}×{s.Value}"))}");
        await AssertUpAndWholeAsync();
    }

    /// <summary>The host still answers, and every agent that was stored is whole: its stats count exactly its episodes.</summary>
    private async Task AssertUpAndWholeAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/platform/agents/after-fuzz/complete") { Content = new StringContent("""{"prompt":"still up?"}""", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _key);
        using var response = await _host.Rest.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);

        var tenantFolder = Path.Combine(_host.DataDir, "episodes", "fuzz");
        foreach (var agentFolder in Directory.EnumerateDirectories(tenantFolder))
        {
            var agent = Path.GetFileName(agentFolder);
            Assert.Matches("^[a-z0-9][a-z0-9_-]{0,63}$", agent);
            var episodes = Directory.EnumerateFiles(agentFolder, "*.json", SearchOption.AllDirectories).Count();
            using var stats = new HttpRequestMessage(HttpMethod.Get, $"/platform/agents/{agent}/stats");
            stats.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _key);
            using var statsResponse = await _host.Rest.SendAsync(stats);
            var body = await TestHost.ReadObjectAsync(statsResponse);
            Assert.Equal(episodes, WholeNumber(body["totalInteractions"]));
        }

        // Nothing was written outside the data folder's own layout.
        Assert.All(Directory.EnumerateDirectories(_host.DataDir), d => Assert.Contains(Path.GetFileName(d), DataFolders));
    }

    private static string Fill(string template, string agent, string value) =>
        template.Replace("{agent}", agent, StringComparison.Ordinal).Replace("{value}", Uri.EscapeDataString(value.Length > 2000 ? value[..2000] : value), StringComparison.Ordinal);

    private static JsonObject BaseBody(string[] fields, Random random)
    {
        var body = new JsonObject();
        foreach (var field in fields.Where(_ => random.Next(2) == 0))
        {
            body[field] = field switch
            {
                "prompt" or "query" => "Route invoice 7 to billing",
                "messages" => new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }),
                "model" => "sim-best/best",
                "variants" => new JsonArray(new JsonObject { ["name"] = "a", ["weight"] = 1 }, new JsonObject { ["name"] = "b", ["weight"] = 1 }),
                _ => null,
            };
        }

        return body;
    }

    private static StringContent? Body(HttpMethod method, string[] fields, Random random) =>
        Content(method, BaseBody(fields, random).ToJsonString());

    private static StringContent? Content(HttpMethod method, string body) =>
        method == HttpMethod.Get || method == HttpMethod.Delete ? null : new StringContent(body, Encoding.UTF8, "application/json");

    private static Struct DeepStruct(int depth, int entries)
    {
        var root = new Struct();
        for (var i = 0; i < entries; i++)
        {
            root.Fields[$"k{i}"] = Value.ForString("v");
        }

        var inner = root;
        for (var level = 1; level < depth; level++)
        {
            var child = new Struct();
            inner.Fields["child"] = Value.ForStruct(child);
            inner = child;
        }

        return root;
    }

    private static T Pick<T>(Random random, T[] items) => items[random.Next(items.Length)];
}
