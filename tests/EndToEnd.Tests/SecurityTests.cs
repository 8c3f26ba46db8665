using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using PersistentAgents.Contracts.V1;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// Tenants and API keys on the embedded host started with <c>--Auth:Mode keys</c>: keys created, used and
/// revoked; no key, a wrong key and a user key refused where they must be; tenant A refused on every
/// route for tenant B's agent; per-key rate limits with 429 and Retry-After.
/// </summary>
public sealed class SecurityTests : IAsyncLifetime
{
    private const string AdminKey = "test-admin-key-0123456789";
    private TestHost _host = null!;

    public async Task InitializeAsync() =>
        _host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(),
            "--Auth:Mode", "keys", "--Auth:AdminKey", AdminKey, "--Auth:RequestsPerMinute", "6000");

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Keys_are_created_listed_used_and_revoked_and_only_their_hash_is_stored()
    {
        var (status, created) = await SendAsync(AdminKey, HttpMethod.Post, "/admin/keys", new { tenant = "acme", name = "ci pipeline" });
        Assert.Equal(200, status);
        var secret = created["key"]!.GetValue<string>();
        var id = created["info"]!["id"]!.GetValue<string>();
        Assert.StartsWith("pa_", secret, StringComparison.Ordinal);
        Assert.Equal("user", created["info"]!["scope"]!.GetValue<string>());

        var (_, listed) = await SendAsync(AdminKey, HttpMethod.Get, "/admin/keys?tenant=acme");
        var key = Assert.Single(listed["keys"]!.AsArray())!;
        Assert.Equal(id, key["id"]!.GetValue<string>());
        Assert.Equal(secret[..11], key["prefix"]!.GetValue<string>());
        Assert.DoesNotContain(secret, listed.ToJsonString(), StringComparison.Ordinal);

        var (completeStatus, reply) = await SendAsync(secret, HttpMethod.Post, "/platform/agents/router/complete", new { prompt = "Route invoice 7" });
        Assert.Equal(200, completeStatus);
        Assert.Single(_host.Episodes("router", tenant: "acme"));
        Assert.Empty(_host.Episodes("router"));
        Assert.NotEmpty(reply["text"]!.GetValue<string>());

        // Nothing under the data folder holds the secret: only its SHA-256.
        foreach (var file in Directory.EnumerateFiles(_host.DataDir, "*", SearchOption.AllDirectories))
        {
            Assert.DoesNotContain(secret, Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file)), StringComparison.Ordinal);
        }

        var (revokeStatus, revoked) = await SendAsync(AdminKey, HttpMethod.Delete, $"/admin/keys/{id}");
        Assert.Equal(200, revokeStatus);
        Assert.NotNull(revoked["revokedAt"]);
        var (afterStatus, refusal) = await SendAsync(secret, HttpMethod.Get, "/platform/agents/router/stats");
        Assert.Equal(401, afterStatus);
        Assert.Contains("revoked", refusal["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var (missingStatus, missing) = await SendAsync(AdminKey, HttpMethod.Delete, "/admin/keys/0000000000000000");
        Assert.Equal(404, missingStatus);
        Assert.StartsWith("id:", missing["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"tenant": "Not Valid"}""", "tenant:")]
    [InlineData("""{"tenant": ""}""", "tenant:")]
    [InlineData("""{"tenant": "acme", "scope": "root"}""", "scope:")]
    [InlineData("""{"tenant": "acme", "requestsPerMinute": -1}""", "requestsPerMinute:")]
    [InlineData("""{"tenant": "acme", "name": "bell\u0007"}""", "name:")]
    [InlineData("""{"tenant": "acme", "owner": "x"}""", "owner:")]
    public async Task A_bad_key_request_is_refused_naming_the_field_and_no_key_is_made(string body, string field)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/keys") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await _host.Rest.SendAsync(request);
        var error = await TestHost.ReadObjectAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith(field, error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var (_, listed) = await SendAsync(AdminKey, HttpMethod.Get, "/admin/keys");
        Assert.Empty(listed["keys"]!.AsArray());
    }

    [Fact]
    public async Task Without_a_valid_key_every_route_but_health_is_refused_over_rest_and_grpc()
    {
        foreach (var key in new[] { null, "pa_not-a-key", AdminKey + "x" })
        {
            foreach (var (method, path) in AgentRoutes("anyone", "0123456789abcdef0123456789abcdef").Append((HttpMethod.Get, "/admin/keys")).Append((HttpMethod.Post, "/v1/chat/completions")))
            {
                var (status, body) = await SendAsync(key, method, path, method == HttpMethod.Get || method == HttpMethod.Delete ? null : new { prompt = "hi" });
                Assert.True(status == 401, $"{method} {path} with key '{key}' answered {status}");
                // The OpenAI-compatible routes refuse in OpenAI's error shape.
                var message = path.StartsWith("/v1/", StringComparison.Ordinal) ? body["error"]!["message"] : body["message"];
                Assert.StartsWith("authorization:", message!.GetValue<string>(), StringComparison.Ordinal);
            }

            var (streamStatus, _) = await SendAsync(key, HttpMethod.Post, "/platform/agents/anyone/complete?stream=true", new { prompt = "hi" });
            Assert.Equal(401, streamStatus);
        }

        var agents = new Contracts.V1.Agents.AgentsClient(_host.Grpc);
        var refused = await Assert.ThrowsAsync<RpcException>(() => agents.GetStatsAsync(new GetStatsRequest { Agent = "anyone" }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.StartsWith("authorization:", refused.Status.Detail, StringComparison.Ordinal);

        var health = new Grpc.Health.V1.Health.HealthClient(_host.Grpc);
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
    }

    [Fact]
    public async Task A_user_key_is_refused_on_admin_routes()
    {
        var user = await CreateKeyAsync("acme");
        foreach (var (method, path, body) in new (HttpMethod, string, object?)[]
        {
            (HttpMethod.Post, "/admin/keys", new { tenant = "acme", scope = "admin" }),
            (HttpMethod.Get, "/admin/keys", null),
            (HttpMethod.Delete, "/admin/keys/0000000000000000", null),
            (HttpMethod.Put, "/admin/providers/sim-best/simulation", new { failureRate = 1 }),
            (HttpMethod.Get, "/dashboard/events", null),
        })
        {
            var (status, refusal) = await SendAsync(user, method, path, body);
            Assert.True(status == 403, $"{method} {path} answered {status}");
            Assert.StartsWith("authorization:", refusal["message"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        var keys = new ApiKeys.ApiKeysClient(_host.Grpc);
        var refused = await Assert.ThrowsAsync<RpcException>(() => keys.ListApiKeysAsync(new ListApiKeysRequest(), Bearer(user)).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);

        // The user key still works where it belongs.
        var (completeStatus, _) = await SendAsync(user, HttpMethod.Post, "/platform/agents/own/complete", new { prompt = "hello" });
        Assert.Equal(200, completeStatus);
    }

    [Fact]
    public async Task Tenant_a_is_refused_on_every_route_for_tenant_bs_agents_and_sees_none_of_its_data()
    {
        var tenantA = await CreateKeyAsync("tenant-a");
        var tenantB = await CreateKeyAsync("tenant-b");
        const string prompt = "Invoices from Initech go to the Lyon billing team";
        var (_, first) = await SendAsync(tenantB, HttpMethod.Post, "/platform/agents/b-only/complete", new { prompt, sessionId = "s" });
        await SendAsync(tenantB, HttpMethod.Post, "/platform/agents/b-only/complete", new { prompt = "Where do Initech invoices go?", sessionId = "s" });
        await SendAsync(tenantB, HttpMethod.Post, "/platform/agents/shared/complete", new { prompt });
        var interactionId = first["interactionId"]!.GetValue<string>();
        Assert.Equal(200, (await SendAsync(tenantB, HttpMethod.Put, "/platform/agents/b-only/experiments/split",
            new { variants = new object[] { new { name = "a", weight = 1 }, new { name = "b", weight = 1, policy = "cost-first" } } })).Status);
        var bBefore = await ReadableStateAsync(tenantB, "b-only", interactionId);

        var refusals = 0;
        foreach (var (method, path) in AgentRoutes("b-only", interactionId))
        {
            if (path.EndsWith("/complete", StringComparison.Ordinal))
            {
                continue; // A complete makes tenant A's own agent of that name: checked below.
            }

            object? body = path.EndsWith("/feedback", StringComparison.Ordinal) ? new { interactionId, score = 0.1 }
                : path.EndsWith("/recall", StringComparison.Ordinal) ? new { query = prompt }
                : null;
            var (status, refusal) = await SendAsync(tenantA, method, path, body);
            Assert.True(status == 404, $"tenant A: {method} {path} answered {status} {refusal}");
            refusals++;
        }

        Assert.True(refusals >= 10, $"only {refusals} routes were tried");
        var (_, experiments) = await SendAsync(tenantA, HttpMethod.Get, "/platform/agents/b-only/experiments");
        Assert.Empty(experiments["experiments"]!.AsArray());

        var agents = new Contracts.V1.Agents.AgentsClient(_host.Grpc);
        foreach (var call in new Func<CallOptions, Task>[]
        {
            o => agents.GetStatsAsync(new GetStatsRequest { Agent = "b-only" }, o).ResponseAsync,
            o => agents.GetEpisodeAsync(new AgentEpisodeRequest { Agent = "b-only", InteractionId = interactionId }, o).ResponseAsync,
            o => agents.RecallMemoryAsync(new AgentRecallRequest { Agent = "b-only", Query = prompt }, o).ResponseAsync,
            o => agents.PurgeMemoryAsync(new PurgeMemoryRequest { Agent = "b-only" }, o).ResponseAsync,
        })
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => call(Bearer(tenantA)));
            Assert.Equal(StatusCode.NotFound, refused.StatusCode);
        }

        // The same name in tenant A is another agent: its own stats, no recall of B's memories, no cache hit on B's reply.
        var (aStatus, aReply) = await SendAsync(tenantA, HttpMethod.Post, "/platform/agents/shared/complete", new { prompt });
        Assert.Equal(200, aStatus);
        Assert.Empty(aReply["memoryIds"]!.AsArray());
        Assert.False(aReply["cacheHit"]?.GetValue<bool>() ?? false);
        var (_, aStats) = await SendAsync(tenantA, HttpMethod.Get, "/platform/agents/shared/stats");
        Assert.Equal(1, WholeNumber(aStats["totalInteractions"]));
        Assert.Equal(1, WholeNumber((await SendAsync(tenantB, HttpMethod.Get, "/platform/agents/shared/stats")).Body["totalInteractions"]));

        // The gateway's response cache is per tenant too (the OpenAI-compatible route skips memory, so a repeat is an exact hit).
        var chat = new { model = "sim-best/best", messages = new[] { new { role = "user", content = "Summarise ticket 99" } } };
        Assert.Equal("false", await ChatCacheHitAsync(tenantB, chat));
        Assert.Equal("true", await ChatCacheHitAsync(tenantB, chat));
        Assert.Equal("false", await ChatCacheHitAsync(tenantA, chat));

        // Whatever A tried, B's agent is as it was.
        Assert.Equal(bBefore, await ReadableStateAsync(tenantB, "b-only", interactionId));
    }

    [Fact]
    public async Task The_dashboard_stream_shows_an_admin_only_their_own_tenants_agents()
    {
        var tenantB = await CreateKeyAsync("tenant-b");
        var (_, created) = await SendAsync(AdminKey, HttpMethod.Post, "/admin/keys", new { tenant = "tenant-a", scope = "admin" });
        var adminOfA = created["key"]!.GetValue<string>();
        Assert.Equal(200, (await SendAsync(tenantB, HttpMethod.Post, "/platform/agents/b-secret/complete", new { prompt = "only for tenant b" })).Status);
        Assert.Equal(200, (await SendAsync(adminOfA, HttpMethod.Post, "/platform/agents/a-visible/complete", new { prompt = "for tenant a" })).Status);

        // The page passes the key from its URL fragment as access_token, the only way an EventSource can send it.
        using var stream = await _host.Rest.GetAsync($"/dashboard/events?access_token={Uri.EscapeDataString(adminOfA)}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
        string? data = null;
        while (data is null && await reader.ReadLineAsync() is { } line)
        {
            data = line.StartsWith("data: ", StringComparison.Ordinal) ? line["data: ".Length..] : null;
        }

        var snapshot = JsonNode.Parse(data!)!;
        var names = snapshot["agents"]!.AsArray().Select(a => a!["name"]!.GetValue<string>()).ToList();
        Assert.Contains("a-visible", names);
        Assert.DoesNotContain("b-secret", names);
        Assert.DoesNotContain("b-secret", data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_over_its_rate_limit_gets_429_with_retry_after_and_other_keys_are_unaffected()
    {
        var limited = await CreateKeyAsync("acme", requestsPerMinute: 3);
        var other = await CreateKeyAsync("acme");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(404, (await SendAsync(limited, HttpMethod.Get, "/platform/agents/nobody/stats")).Status);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/platform/agents/nobody/stats");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", limited);
        using var response = await _host.Rest.SendAsync(request);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        var retryAfter = Assert.Single(response.Headers.GetValues("Retry-After"));
        Assert.InRange(int.Parse(retryAfter, System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        var body = await TestHost.ReadObjectAsync(response);
        Assert.StartsWith("rate limit:", body["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var agents = new Contracts.V1.Agents.AgentsClient(_host.Grpc);
        var refused = await Assert.ThrowsAsync<RpcException>(() => agents.GetStatsAsync(new GetStatsRequest { Agent = "nobody" }, Bearer(limited)).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.NotNull(refused.Trailers.GetValue("retry-after"));

        Assert.Equal(404, (await SendAsync(other, HttpMethod.Get, "/platform/agents/nobody/stats")).Status);
    }

    /// <summary>Every route of the public API that names an agent.</summary>
    private static IEnumerable<(HttpMethod Method, string Path)> AgentRoutes(string agent, string interactionId) =>
    [
        (HttpMethod.Post, $"/platform/agents/{agent}/complete"),
        (HttpMethod.Get, $"/platform/agents/{agent}/stats"),
        (HttpMethod.Get, $"/platform/agents/{agent}/health"),
        (HttpMethod.Get, $"/platform/agents/{agent}/memory/working?sessionId=s"),
        (HttpMethod.Post, $"/platform/agents/{agent}/memory/recall"),
        (HttpMethod.Get, $"/platform/agents/{agent}/memory/episodes"),
        (HttpMethod.Get, $"/platform/agents/{agent}/memory/episodes/{interactionId}"),
        (HttpMethod.Delete, $"/platform/agents/{agent}/memory"),
        (HttpMethod.Post, $"/platform/agents/{agent}/feedback"),
        (HttpMethod.Get, $"/platform/agents/{agent}/learning/history"),
        (HttpMethod.Delete, $"/platform/agents/{agent}/experiments/split"),
    ];

    /// <summary>What tenant B can read of its agent, as one string to compare before and after.</summary>
    private async Task<string> ReadableStateAsync(string key, string agent, string interactionId)
    {
        var parts = new List<string>();
        foreach (var path in new[] { "stats", "memory/working?sessionId=s", "memory/episodes", $"memory/episodes/{interactionId}", "experiments", "learning/history" })
        {
            var (status, body) = await SendAsync(key, HttpMethod.Get, $"/platform/agents/{agent}/{path}");
            Assert.True(status == 200, $"tenant B: GET {path} answered {status} {body}");
            body.Remove("lastActivity");
            parts.Add(body.ToJsonString());
        }

        return string.Join('\n', parts);
    }

    private async Task<string> ChatCacheHitAsync(string key, object chat)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(chat) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await _host.Rest.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Assert.Single(response.Headers.GetValues("x-pa-cache-hit"));
    }

    private async Task<string> CreateKeyAsync(string tenant, int requestsPerMinute = 0)
    {
        var (status, created) = await SendAsync(AdminKey, HttpMethod.Post, "/admin/keys", new { tenant, requestsPerMinute });
        Assert.Equal(200, status);
        return created["key"]!.GetValue<string>();
    }

    private static CallOptions Bearer(string key) => new(new Metadata { { "authorization", $"Bearer {key}" } });

    private async Task<(int Status, JsonObject Body)> SendAsync(string? key, HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        using var response = await _host.Rest.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 && text.TrimStart().StartsWith('{') ? JsonNode.Parse(text)!.AsObject() : []);
    }
}
