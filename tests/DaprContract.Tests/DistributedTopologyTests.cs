using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Agents;
using PersistentAgents.Agents.Dapr;
using PersistentAgents.Contracts;
using PersistentAgents.Gateway;
using PersistentAgents.Learning;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Dapr;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The four services of distributed mode, each on its own host beside its own sidecar double: the public API
/// of the agents service served end to end, each agent an actor placed by its sidecar.
/// </summary>
[Collection(PgliteTests.Name)]
public sealed class DistributedTopologyTests(PgliteDatabase postgres) : IAsyncLifetime, IDisposable
{
    private const string Catalog = """
        simulated: always
        providers:
          - name: sim-a
            kind: simulated
            models:
              - name: a
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.8
                simulation: { quality: 0.8, failureRate: 0, latencyMs: 5 }
        """;

    private readonly List<IAsyncDisposable> _running = [];
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pa-distributed", Guid.NewGuid().ToString("N"));
    private SidecarDouble _agentsSidecar = null!;
    private SidecarDouble _learningSidecar = null!;
    private SidecarDouble _memorySidecar = null!;
    private Uri _memoryApp = null!;
    private HttpClient _rest = null!;
    private Uri _agentsApp = null!;
    private Grpc.Net.Client.GrpcChannel _learningChannel = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        var catalogPath = Path.Combine(_folder, "catalog.yaml");
        await File.WriteAllTextAsync(catalogPath, Catalog);
        string[] quiet = ["--Logging:LogLevel:Default", "Warning"];

        _memorySidecar = await StartSidecarAsync();
        _memorySidecar.AddBinding(DaprComponents.SemanticMemory, postgres.Binding);
        _memorySidecar.AddBinding(DaprComponents.EpisodicMemory, new BlobBinding(BlobFlavour.S3));
        // The hashed embedder: recall by shared words, with nothing to load.
        var memory = await StartAsync(MemoryServiceHost.Build(["--urls", "http://127.0.0.1:0", "--Memory:EpisodeBinding", "s3", "--Memory:Embeddings:Kind", "hashed", .. quiet], s => s.AddSingleton(_memorySidecar.Client)));
        _learningSidecar = await StartSidecarAsync();
        var learning = await StartAsync(LearningServiceHost.Build(["--urls", "http://127.0.0.1:0", .. quiet], s => s.AddSingleton(_learningSidecar.Client)));
        var gatewaySidecar = await StartSidecarAsync();
        var gateway = await StartAsync(GatewayServiceHost.Build(["--urls", "http://127.0.0.1:0", "--catalog", catalogPath, .. quiet], s => s.AddSingleton(gatewaySidecar.Client)));

        _agentsSidecar = await StartSidecarAsync();
        _memoryApp = memory[0];
        _agentsSidecar.RegisterApp(DaprComponents.Apps.Memory, _memoryApp);
        _agentsSidecar.RegisterApp(DaprComponents.Apps.Learning, learning[0]);
        _agentsSidecar.RegisterApp(DaprComponents.Apps.Gateway, gateway[0]);
        await StartAgentsAsync();
        _learningChannel = Grpc.Net.Client.GrpcChannel.ForAddress(learning[0]);
        await _agentsSidecar.AddGrpcSubscriberAsync(new AppCallbackCaller(_learningChannel));
    }

    public void Dispose()
    {
        _rest?.Dispose();
        _learningChannel?.Dispose();
    }

    public async Task DisposeAsync()
    {
        foreach (var running in Enumerable.Reverse(_running))
        {
            await running.DisposeAsync();
        }

        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>The agents service requires keys in distributed mode; the tests act with the configured admin key.</summary>
    private const string AdminKey = "distributed-test-admin-key-0001";

    /// <summary>Starts the agents service beside its sidecar double and points the REST client at it.</summary>
    private async Task<WebApplication> StartAgentsAsync()
    {
        var app = AgentsServiceHost.Build(
            [
                "--urls", "http://127.0.0.1:0", "--grpc-urls", "http://127.0.0.1:0",
                "--Dapr:GrpcEndpoint", $"http://127.0.0.1:{_agentsSidecar.GrpcPort}", "--Dapr:HttpEndpoint", $"http://127.0.0.1:{_agentsSidecar.HttpPort}",
                "--Logging:LogLevel:Default", "Warning", "--Auth:AdminKey", AdminKey,
                // The memory service here embeds with the hashed embedder, whose cosines run lower than the
                // default model's, for which the shipped recall floor is tuned.
                "--Agents:RecallMinSimilarity", "0.2",
            ],
            s => s.AddSingleton(_agentsSidecar.Client));
        var addresses = await StartAsync(app);
        Assert.Equal([IPersistentAgent.ActorType], await _agentsSidecar.RegisterActorHostAsync(addresses[0]));
        _rest?.Dispose();
        _rest = new HttpClient { BaseAddress = addresses[0] };
        _rest.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
        _agentsApp = addresses[0];
        return app;
    }

    private async Task<SidecarDouble> StartSidecarAsync()
    {
        var sidecar = await SidecarDouble.StartAsync(TimeProvider.System);
        _running.Add(sidecar);
        return sidecar;
    }

    private async Task<List<Uri>> StartAsync(WebApplication app)
    {
        await app.StartAsync();
        _running.Add(app);
        return [.. app.ListeningAddresses()];
    }

    private async Task<(int Status, JsonObject Body)> CompleteAsync(string agent, object body)
    {
        using var response = await _rest.PostAsJsonAsync($"/platform/agents/{agent}/complete", body);
        return ((int)response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }

    private async Task<JsonObject> GetAsync(string path) => JsonNode.Parse(await _rest.GetStringAsync(new Uri(path, UriKind.Relative)))!.AsObject();

    [PgliteFact]
    public async Task Complete_stats_and_health_are_served_end_to_end_through_the_actor_and_the_other_services()
    {
        var (status, reply) = await CompleteAsync("email-router", new { prompt = "A customer disputes invoice 4471", taskType = "email_routing" });
        var stats = await GetAsync("/platform/agents/email-router/stats");
        var health = await GetAsync("/platform/agents/email-router/health");

        Assert.True(status == 200, reply.ToJsonString());
        Assert.True(reply["simulated"]!.GetValue<bool>());
        Assert.Equal("sim-a", reply["provider"]!.GetValue<string>());
        Assert.Equal(1, stats["totalInteractions"]!.GetValue<JsonElement>().GetInt64() is var n ? n : 0);
        Assert.Equal("ok", health["status"]!.GetValue<string>());

        Assert.Contains(_agentsSidecar.ActorCalls, c => c.Type == IPersistentAgent.ActorType && c.Id == "default:email-router");
        Assert.Contains(_agentsSidecar.ActorState.Keys, k => k == (IPersistentAgent.ActorType, "default:email-router", "aggregate"));
        Assert.Equal(
            [DaprComponents.Apps.Gateway, DaprComponents.Apps.Learning, DaprComponents.Apps.Memory],
            _agentsSidecar.Invocations.Select(i => i.AppId).Distinct().Order(StringComparer.Ordinal));
        var published = Assert.Single(_agentsSidecar.Published);
        Assert.Equal((DaprComponents.PubSub, Topics.InteractionCompleted), (published.PubSub, published.Topic));
        Assert.Equal(reply["interactionId"]!.GetValue<string>(), published.Metadata["cloudevent.id"]);
        Assert.Contains(_memorySidecar.BindingCalls, c => c.Name == DaprComponents.EpisodicMemory && c.Operation == "create");

        // interaction-completed reached the learning service, which learned from it.
        Assert.Equal((Topics.InteractionCompleted, reply["interactionId"]!.GetValue<string>(), "Success"), Assert.Single(_agentsSidecar.Deliveries));
        var learned = stats["taskTypes"]!.AsArray().Single()!["learned"]!.AsArray();
        Assert.Equal(1, Assert.Single(learned)!["pulls"]!.GetValue<JsonElement>().GetDouble());
        Assert.Contains(_learningSidecar.StateKeys(DaprComponents.LearningState), k => k.Contains("email-router", StringComparison.Ordinal));
    }

    [PgliteFact]
    public async Task Actor_state_survives_deactivation_and_turns_of_one_agent_never_overlap()
    {
        var replies = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => CompleteAsync("busy", new { prompt = $"Request {i}", sessionId = $"s{i}" })));
        Assert.All(replies, r => Assert.Equal(200, r.Status));

        await _agentsSidecar.DeactivateActorAsync(IPersistentAgent.ActorType, "default:busy");
        var stats = await GetAsync("/platform/agents/busy/stats");

        Assert.Equal(6, stats["totalInteractions"]!.GetValue<JsonElement>().GetInt64());
        var turns = _agentsSidecar.ActorCalls
            .Where(c => c.Id == "default:busy" && c.Method.Contains("Complete", StringComparison.Ordinal))
            .OrderBy(c => c.Started)
            .ToList();
        Assert.Equal(6, turns.Count);
        Assert.All(turns.Zip(turns.Skip(1)), pair => Assert.True(pair.First.Ended <= pair.Second.Started, "two turns of one actor overlapped"));
    }

    [PgliteFact]
    public async Task Bad_input_is_refused_naming_the_field_before_the_actor_is_called()
    {
        var (status, error) = await CompleteAsync("email-router", new { prompt = "" });

        Assert.Equal(400, status);
        Assert.StartsWith("prompt:", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(_agentsSidecar.ActorCalls);
    }

    [PgliteFact]
    public async Task An_agent_task_delivered_twice_runs_once_and_gives_one_agent_results_event()
    {
        const string TaskId = "task-0001";
        const string Data = """{"agent": "inbox", "request": {"prompt": "Classify: refund request for order 88", "taskType": "classify"}}""";

        var first = await _agentsSidecar.DeliverAsync(_agentsApp, DaprComponents.PubSub, Topics.AgentTasks, TaskId, Data);
        var again = await _agentsSidecar.DeliverAsync(_agentsApp, DaprComponents.PubSub, Topics.AgentTasks, TaskId, Data);

        Assert.Equal((200, "SUCCESS"), first);
        Assert.Equal((200, "SUCCESS"), again);
        var result = Assert.Single(_agentsSidecar.Published, p => p.Topic == Topics.AgentResults);
        Assert.Equal(TaskId, result.Metadata["cloudevent.id"]);
        var parsed = Contracts.V1.AgentTaskResult.Parser.ParseJson(System.Text.Encoding.UTF8.GetString(result.Data));
        Assert.Equal((TaskId, "inbox", "sim-a"), (parsed.TaskId, parsed.Agent, parsed.Reply.Provider));
        Assert.Single(_agentsSidecar.Published, p => p.Topic == Topics.InteractionCompleted);
        var stats = await GetAsync("/platform/agents/inbox/stats");
        Assert.Equal(1, stats["totalInteractions"]!.GetValue<JsonElement>().GetInt64());
    }

    [PgliteTheory]
    [InlineData("""{"agent": "inbox", "request": {"prompt": ""}}""", "prompt:")]
    [InlineData("""{"agent": "../etc", "request": {"prompt": "hi"}}""", "agent:")]
    [InlineData("""{"agent": "inbox", "request": {"prompt": "hi"}, "priority": 9}""", "data:")]
    [InlineData("\"just a string\"", "data:")]
    public async Task A_malformed_agent_task_lands_in_the_dead_letter_topic_and_runs_nothing(string data, string reason)
    {
        var answer = await _agentsSidecar.DeliverAsync(_agentsApp, DaprComponents.PubSub, Topics.AgentTasks, "bad-1", data);

        Assert.Equal((200, "SUCCESS"), answer);
        var dead = Assert.Single(_agentsSidecar.Published);
        Assert.Equal(Topics.AgentTasksDeadLetter, dead.Topic);
        var invalid = Contracts.V1.InvalidAgentTask.Parser.ParseJson(System.Text.Encoding.UTF8.GetString(dead.Data));
        Assert.Equal("bad-1", invalid.EventId);
        Assert.StartsWith(reason, invalid.Reason, StringComparison.Ordinal);
        Assert.Empty(_agentsSidecar.ActorCalls);
    }

    [PgliteFact]
    public async Task Api_keys_live_on_the_agents_state_store_hashed_and_a_revoked_key_is_refused_at_once()
    {
        var (created, key) = await SendAsync(HttpMethod.Post, "/admin/keys", new { tenant = "acme", name = "distributed" });
        Assert.Equal(200, created);
        var secret = key["key"]!.GetValue<string>();
        var id = key["info"]!["id"]!.GetValue<string>();
        var stored = Assert.Single(_agentsSidecar.StateKeys(DaprComponents.ActorState), k => k.StartsWith("api-keys/hash/", StringComparison.Ordinal));
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);

        using var tenantClient = new HttpClient { BaseAddress = _rest.BaseAddress };
        tenantClient.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", secret);
        using (var complete = await tenantClient.PostAsJsonAsync("/platform/agents/inbox/complete", new { prompt = "hello from acme" }))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, complete.StatusCode);
        }

        // The admin key acts in the default tenant: acme's agent is not there.
        Assert.Equal(404, (await SendAsync(HttpMethod.Get, "/platform/agents/inbox/stats")).Status);
        var (_, listed) = await SendAsync(HttpMethod.Get, "/admin/keys?tenant=acme");
        Assert.Equal(id, Assert.Single(listed["keys"]!.AsArray())!["id"]!.GetValue<string>());

        Assert.Equal(200, (await SendAsync(HttpMethod.Delete, $"/admin/keys/{id}")).Status);
        using var refused = await tenantClient.GetAsync("/platform/agents/inbox/stats");
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [PgliteFact]
    public async Task Hostile_agent_task_events_are_acknowledged_and_each_gives_exactly_one_result_or_dead_letter_never_a_5xx()
    {
        string[] names = ["", "inbox", "../etc", "a/b", "UPPER", new string('x', 65), "ünï", "\u0000", "con", "-x"];
        string[] texts = ["", "hi", "\u0001\u007f", "🙂👩‍👩‍👧", "\u202Eevil", new string('a', 40_000), "'; DROP TABLE x; --"];
        string[] requests =
        [
            "null", "42", "\"s\"", "[]", "{}", "{\"prompt\": 7}", "{\"prompt\": \"hi\", \"taskType\": \"Bad Type\"}", "{\"prompt\": \"hi\", \"context\": [1]}",
            "{\"prompt\": \"hi\", \"context\": " + string.Concat(Enumerable.Repeat("{\"a\":", 40)) + "1" + new string('}', 40) + "}", "{\"prompt\": \"hi\", \"policy\": \"stingy\"}",
        ];
        var random = new Random(20261125);
        var inputs = new List<string>();
        foreach (var name in names)
        {
            foreach (var tenant in new[] { "", "acme", "Bad Tenant", "../t" })
            {
                inputs.Add(System.Text.Json.JsonSerializer.Serialize(new { agent = name, tenant, request = new { prompt = texts[random.Next(texts.Length)] } }));
            }
        }

        inputs.AddRange(requests.Select(r => $$"""{"agent": "inbox", "request": {{r}}}"""));
        inputs.AddRange(["\"\"", "{\"agent\": 5}", "{\"agent\": \"inbox\", \"tenant\": [], \"request\": {\"prompt\": \"x\"}}"]);
        string[] notJson = ["", "{", "[", "nul", "{\"agent\": \"inbox\",}", "{\"agent\": \"inbox\", \"request\": {\"prompt\": \"\\ud800\"}}"];

        for (var i = 0; i < inputs.Count + notJson.Length; i++)
        {
            var eventId = $"fuzz-{i}";
            var (http, status) = i < inputs.Count
                ? await _agentsSidecar.DeliverAsync(_agentsApp, DaprComponents.PubSub, Topics.AgentTasks, eventId, inputs[i])
                : await PostEventAsync(System.Text.Json.JsonSerializer.Serialize(new { id = eventId, data = notJson[i - inputs.Count] }));
            Assert.True((http, status) == (200, "SUCCESS"), $"event {i} answered {http} {status}");
            var outcomes = _agentsSidecar.Published.Where(p => p.Metadata.GetValueOrDefault("cloudevent.id") == eventId && p.Topic is Topics.AgentResults or Topics.AgentTasksDeadLetter).ToList();
            var outcome = Assert.Single(outcomes);
            if (outcome.Topic == Topics.AgentTasksDeadLetter)
            {
                Assert.NotEmpty(Contracts.V1.InvalidAgentTask.Parser.ParseJson(System.Text.Encoding.UTF8.GetString(outcome.Data)).Reason);
            }
        }

        // Bodies that are not CloudEvents at all, straight at the subscription route.
        foreach (var body in new[] { "", "{", "[]", "{\"id\": 5}", "{\"id\": \"x\", \"data_base64\": \"%%%\"}", new string('[', 10_000) })
        {
            var (http, _) = await PostEventAsync(body);
            Assert.True(http < 500, $"{body} answered {http}");
        }

        var deadLetters = _agentsSidecar.Published.Count(p => p.Topic == Topics.AgentTasksDeadLetter);
        Assert.True(deadLetters >= inputs.Count / 2, $"{deadLetters} dead letters of {inputs.Count} inputs");
    }

    private async Task<(int Http, string Status)> PostEventAsync(string body)
    {
        using var response = await _rest.PostAsync(new Uri(_agentsApp, AgentTasksSubscription.Route), new StringContent(body, System.Text.Encoding.UTF8, "application/cloudevents+json"));
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.StartsWith('{') ? (string?)JsonNode.Parse(text)?["status"] ?? "" : text);
    }

    private async Task<(int Status, JsonObject Body)> SendAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        using var response = await _rest.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? [] : JsonNode.Parse(text)!.AsObject());
    }

    [PgliteFact]
    public async Task Memory_is_per_agent_and_inspectable_and_purge_forgets_one_agent_only()
    {
        var (_, first) = await CompleteAsync("keeper", new { prompt = "Our office in Lyon closes at six on Fridays", taskType = "facts", sessionId = "s1" });
        await CompleteAsync("other", new { prompt = "Invoices above ten thousand euros need two approvals", taskType = "facts" });
        var (_, second) = await CompleteAsync("keeper", new { prompt = "When does the office in Lyon close on Fridays?", taskType = "facts", sessionId = "s1" });

        var working = await GetAsync("/platform/agents/keeper/memory/working?sessionId=s1");
        var episode = await GetAsync($"/platform/agents/keeper/memory/episodes/{first["interactionId"]!.GetValue<string>()}");
        var (recallStatus, recalled) = await SendAsync(HttpMethod.Post, "/platform/agents/keeper/memory/recall", new { query = "office in Lyon" });

        Assert.Contains(first["interactionId"]!.GetValue<string>(), second["memoryIds"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(2, working["turns"]!.AsArray().Count);
        Assert.Contains("Lyon", episode["json"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(200, recallStatus);
        Assert.DoesNotContain(recalled["memories"]!.AsArray(), m => m!["text"]!.GetValue<string>().Contains("Invoices", StringComparison.Ordinal));

        var (purgeStatus, _) = await SendAsync(HttpMethod.Delete, "/platform/agents/keeper/memory");
        Assert.Equal(200, purgeStatus);
        var (statsStatus, _) = await SendAsync(HttpMethod.Get, "/platform/agents/keeper/stats");
        Assert.Equal(404, statsStatus);
        Assert.Equal(1, (await GetAsync("/platform/agents/other/stats"))["totalInteractions"]!.GetValue<JsonElement>().GetInt64());
    }

    [PgliteTheory]
    [InlineData("""{"prompt": ""}""", "prompt:")]
    [InlineData("""{"prompt": "hi", "bogus": 1}""", "bogus:")]
    [InlineData("""{"prompt": 42}""", "prompt:")]
    [InlineData("""{"prompt": "hi", "taskType": "Not Valid"}""", "taskType:")]
    [InlineData("""{"prompt": "hi", "policy": "stingy"}""", "policy:")]
    [InlineData("""[1, 2]""", "body:")]
    public async Task Bad_input_is_refused_with_the_field_and_nothing_reaches_an_actor(string body, string field)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var response = await _rest.PostAsync(new Uri("/platform/agents/strict/complete", UriKind.Relative), content);

        Assert.Equal(400, (int)response.StatusCode);
        Assert.StartsWith(field, JsonNode.Parse(await response.Content.ReadAsStringAsync())!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain(_agentsSidecar.ActorCalls, c => c.Method.Contains("Complete", StringComparison.Ordinal));
    }

    [PgliteFact]
    public async Task Feedback_experiments_history_and_streaming_work_through_the_services()
    {
        var (putStatus, _) = await SendAsync(HttpMethod.Put, "/platform/agents/rated/experiments/policies", new
        {
            variants = new object[] { new { name = "balanced", weight = 1 }, new { name = "frugal", weight = 1, policy = "cost-first" } },
        });
        var (_, reply) = await CompleteAsync("rated", new { prompt = "Summarise the meeting" });
        var (feedbackStatus, feedback) = await SendAsync(HttpMethod.Post, "/platform/agents/rated/feedback", new { interactionId = reply["interactionId"]!.GetValue<string>(), score = 0.3 });
        var history = await GetAsync("/platform/agents/rated/learning/history");
        var experiments = await GetAsync("/platform/agents/rated/experiments");
        using var streamed = await _rest.PostAsync(
            new Uri("/platform/agents/rated/complete?stream=true", UriKind.Relative),
            new StringContent("""{"prompt": "Stream a summary"}""", System.Text.Encoding.UTF8, "application/json"));
        var events = await streamed.Content.ReadAsStringAsync();

        Assert.Equal(200, putStatus);
        Assert.Equal("policies", reply["experiment"]!.GetValue<string>());
        Assert.Equal((200, true), (feedbackStatus, feedback["recorded"]!.GetValue<bool>()));
        Assert.Single(history["selections"]!.AsArray());
        Assert.Equal(1, experiments["experiments"]!.AsArray().Single()!["variants"]!.AsArray().Sum(v => v!["interactions"]!.GetValue<JsonElement>().GetInt64()));
        Assert.Equal("text/event-stream", streamed.Content.Headers.ContentType!.MediaType);
        Assert.Contains("event: done", events, StringComparison.Ordinal);
    }

    [PgliteFact]
    public async Task The_agents_app_serves_openai_embeddings_with_the_memory_services_embedder_behind_its_keys()
    {
        var (status, reply) = await PostJsonAsync(_rest, "/v1/embeddings", """{"model": "hashed-ngrams@768", "input": ["Invoice 4471 is overdue", "Lyon closes at six"]}""");
        var manyInputs = System.Text.Json.JsonSerializer.Serialize(new { model = "hashed-ngrams@768", input = Enumerable.Repeat("word", 257) });
        var (tooManyStatus, tooMany) = await PostJsonAsync(_rest, "/v1/embeddings", manyInputs);
        using var anonymous = new HttpClient { BaseAddress = _agentsApp };
        var (anonymousStatus, _) = await PostJsonAsync(anonymous, "/v1/embeddings", """{"model": "hashed-ngrams@768", "input": "hello"}""");

        Assert.True(status == 200, reply.ToJsonString());
        Assert.Equal("hashed-ngrams@768", reply["model"]!.GetValue<string>());
        Assert.Equal(2, reply["data"]!.AsArray().Count);
        Assert.All(reply["data"]!.AsArray(), d => Assert.Equal(768, d!["embedding"]!.AsArray().Count));
        Assert.Equal(8, reply["usage"]!["prompt_tokens"]!.GetValue<JsonElement>().GetInt64());
        Assert.Contains((DaprComponents.Apps.Memory, "/persistent_agents.v1.Memory/Embed"), _agentsSidecar.Invocations);
        // The memory service's limit, refused over gRPC, comes back as an OpenAI error naming the field.
        Assert.Equal(400, tooManyStatus);
        Assert.Equal("input", tooMany["error"]!["param"]!.GetValue<string>());
        Assert.StartsWith("input: 257 texts, the limit is 256", tooMany["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(401, anonymousStatus);
    }

    [PgliteFact]
    public async Task The_agents_app_serves_openai_chat_completions_streamed_through_the_gateway_app_and_not_streamed()
    {
        const string Prompt = "Summarise the quarterly numbers of every region for the board";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(
                JsonSerializer.Serialize(new { model = "sim-a/a", stream = true, stream_options = new { include_usage = true }, messages = new[] { new { role = "user", content = Prompt } } }),
                System.Text.Encoding.UTF8, "application/json"),
        };
        using var streamed = await _rest.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = (await streamed.Content.ReadAsStringAsync())
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e["data: ".Length..] : throw new Xunit.Sdk.XunitException($"not an SSE data event: {e}"))
            .ToList();
        var (plainStatus, plain) = await PostJsonAsync(_rest, "/v1/chat/completions",
            JsonSerializer.Serialize(new { model = "sim-a/a", messages = new[] { new { role = "user", content = Prompt } } }));

        Assert.Equal(System.Net.HttpStatusCode.OK, streamed.StatusCode);
        Assert.Equal("text/event-stream", streamed.Content.Headers.ContentType!.MediaType);
        Assert.Equal("sim-a", streamed.Headers.GetValues("x-pa-provider").Single());
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        var contents = chunks
            .Where(c => c["choices"]!.AsArray().Count > 0)
            .Select(c => c["choices"]![0]!["delta"]!["content"]?.GetValue<string>())
            .Where(c => !string.IsNullOrEmpty(c))
            .ToList();
        // The gateway app's deltas arrive as deltas, not as one block of text.
        Assert.True(contents.Count >= 5, $"{contents.Count} content chunks: {string.Join(" | ", events)}");
        Assert.StartsWith("[simulated sim-a/a]", string.Concat(contents), StringComparison.Ordinal);
        Assert.Equal("stop", chunks.Last(c => c["choices"]!.AsArray().Count > 0)["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.True(chunks[^1]["usage"]!["completion_tokens"]!.GetValue<JsonElement>().GetInt64() > 0);
        Assert.Contains((DaprComponents.Apps.Gateway, "/persistent_agents.v1.Gateway/CompleteStream"), _agentsSidecar.Invocations);

        Assert.True(plainStatus == 200, plain.ToJsonString());
        Assert.StartsWith("[simulated sim-a/a]", plain["choices"]![0]!["message"]!["content"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains((DaprComponents.Apps.Gateway, "/persistent_agents.v1.Gateway/Complete"), _agentsSidecar.Invocations);
    }

    private static async Task<(int Status, JsonObject Body)> PostJsonAsync(HttpClient client, string path, string json)
    {
        using var response = await client.PostAsync(new Uri(path, UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? [] : JsonNode.Parse(text)!.AsObject());
    }

    [PgliteFact]
    public async Task A_restarted_agents_service_finds_every_agent_as_it_left_it()
    {
        await CompleteAsync("durable", new { prompt = "Remember the Lyon office hours" });
        await CompleteAsync("durable", new { prompt = "And the Paris ones" });
        var before = await GetAsync("/platform/agents/durable/stats");

        var first = (WebApplication)_running.Single(r => r is WebApplication app && app.Services.GetService<Agents.IAgentInvoker>() is not null);
        await first.StopAsync();
        _running.Remove(first);
        await first.DisposeAsync();
        await StartAgentsAsync();
        var (status, reply) = await CompleteAsync("durable", new { prompt = "What were the Lyon office hours?" });
        var after = await GetAsync("/platform/agents/durable/stats");

        Assert.Equal(2, before["totalInteractions"]!.GetValue<JsonElement>().GetInt64());
        Assert.Equal(200, status);
        Assert.NotEmpty(reply["memoryIds"]!.AsArray());
        Assert.Equal(3, after["totalInteractions"]!.GetValue<JsonElement>().GetInt64());
    }

    [PgliteFact]
    public async Task Semantic_memory_down_the_agent_answers_without_recall_and_memory_down_refuses_the_unstorable_turn()
    {
        await CompleteAsync("unaided", new { prompt = "Our office in Lyon closes at six on Fridays" });
        _memorySidecar.AddBinding(DaprComponents.SemanticMemory, new FailingBinding("pgvector: connection refused"));

        var (status, reply) = await CompleteAsync("unaided", new { prompt = "When does the office in Lyon close on Fridays?" });

        Assert.True(status == 200, reply.ToJsonString());
        Assert.Empty(reply["memoryIds"]!.AsArray());
        var degraded = reply["degraded"]!.AsArray().Select(d => d!.GetValue<string>()).ToList();
        Assert.Equal(2, degraded.Count);
        Assert.StartsWith("memory: recall unavailable (", degraded[0], StringComparison.Ordinal);
        Assert.StartsWith("memory: this interaction is not in semantic memory (", degraded[1], StringComparison.Ordinal);
        Assert.Equal(2, _memorySidecar.BindingCalls.Count(c => c.Name == DaprComponents.EpisodicMemory && c.Operation == "create" && c.Outcome == "ok"));

        // With the memory service unreachable the episode cannot be stored, so the turn is not acknowledged.
        _agentsSidecar.RegisterApp(DaprComponents.Apps.Memory, new Uri("http://127.0.0.1:1"));
        var (downStatus, down) = await CompleteAsync("unaided", new { prompt = "Is the Lyon office open on Saturdays?" });
        Assert.Equal(503, downStatus);
        Assert.Matches("^memory: interaction [0-9a-f]{32} could not be stored \\(Unavailable: .*\\); it was not acknowledged$", down["message"]!.GetValue<string>());

        _agentsSidecar.RegisterApp(DaprComponents.Apps.Memory, _memoryApp);
        _memorySidecar.AddBinding(DaprComponents.SemanticMemory, postgres.Binding);
        Assert.Equal(2, (await GetAsync("/platform/agents/unaided/stats"))["totalInteractions"]!.GetValue<JsonElement>().GetInt64());
    }

    [PgliteFact]
    public async Task An_agent_registers_its_periodic_work_as_a_reminder_which_consolidates_its_memory()
    {
        await CompleteAsync("diligent", new { prompt = "Note the new invoice policy" });

        var reminder = Assert.Single(_agentsSidecar.Reminders.Keys, k => k.Id == "default:diligent");
        Assert.Equal((IPersistentAgent.ActorType, PersistentAgentActor.ConsolidationReminder), (reminder.Type, reminder.Name));
        using (var registration = JsonDocument.Parse(_agentsSidecar.Reminders[reminder]))
        {
            Assert.Equal("24h0m0s0ms", registration.RootElement.GetProperty("period").GetString());
        }

        await _agentsSidecar.TriggerReminderAsync(reminder.Type, reminder.Id, reminder.Name);

        Assert.Contains((DaprComponents.Apps.Memory, "/persistent_agents.v1.Memory/Consolidate"), _agentsSidecar.Invocations);
    }
}

/// <summary>A binding whose backend is down: every call fails as the sidecar reports a failing binding.</summary>
internal sealed class FailingBinding(string error) : IBindingBackend
{
    public Task<Dapr.Client.Autogen.Grpc.v1.InvokeBindingResponse> InvokeAsync(Dapr.Client.Autogen.Grpc.v1.InvokeBindingRequest request, CancellationToken cancellationToken) =>
        Task.FromException<Dapr.Client.Autogen.Grpc.v1.InvokeBindingResponse>(new BindingFailedException(error));
}
