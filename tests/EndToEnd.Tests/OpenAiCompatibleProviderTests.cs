using System.Net;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>The OpenAI-compatible adapter against a fake provider on 127.0.0.1.</summary>
public sealed class OpenAiCompatibleProviderTests : IDisposable
{
    private const string KeyVariable = "PA_TEST_FAKE_OPENAI_KEY";
    private readonly WireMockServer _provider = WireMockServer.Start();

    public OpenAiCompatibleProviderTests() => Environment.SetEnvironmentVariable(KeyVariable, "sk-test-secret");

    public void Dispose() => _provider.Stop();

    private string Catalog => $"""
        simulated: never
        providers:
          - name: fake-openai
            kind: openai
            endpoint: {_provider.Url}/v1
            apiKeySecret: {KeyVariable}
            timeoutSeconds: 5
            models:
              - name: gpt-test
                inputPricePerMTok: 2.5
                outputPricePerMTok: 10
                quality: 0.9
        """;

    [Fact]
    public async Task A_configured_openai_compatible_provider_answers_with_its_reported_usage_and_cost()
    {
        _provider.Given(Request.Create().WithPath("/v1/chat/completions").UsingPost())
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody("""
                {"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-test",
                 "choices":[{"index":0,"message":{"role":"assistant","content":"Send it to billing."},"finish_reason":"stop"}],
                 "usage":{"prompt_tokens":120,"completion_tokens":8,"total_tokens":128}}
                """));

        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), Catalog);
        var (status, reply) = await host.CompleteAsync("billing-router", new { prompt = "Where does this invoice go?" });

        Assert.Equal(200, status);
        Assert.Equal("Send it to billing.", reply["text"]!.GetValue<string>());
        Assert.Equal("fake-openai", reply["provider"]!.GetValue<string>());
        Assert.Equal("gpt-test", reply["model"]!.GetValue<string>());
        Assert.False(reply["simulated"]!.GetValue<bool>());
        Assert.Equal(120, WholeNumber(reply["tokensIn"]));
        Assert.Equal(8, WholeNumber(reply["tokensOut"]));
        Assert.Equal((120 * 2.5 + 8 * 10) / 1_000_000, Number(reply["costUsd"]), 12);

        var call = Assert.Single(_provider.LogEntries);
        Assert.Equal("Bearer sk-test-secret", call.RequestMessage.Headers!["Authorization"].Single());
        Assert.Contains("Where does this invoice go?", call.RequestMessage.Body, StringComparison.Ordinal);
        Assert.Contains("\"gpt-test\"", call.RequestMessage.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_provider_that_fails_every_call_is_unavailable_with_what_was_tried()
    {
        _provider.Given(Request.Create().WithPath("/v1/chat/completions").UsingPost())
            .RespondWith(Response.Create().WithStatusCode(500).WithBody("upstream exploded"));

        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), Catalog);
        using var response = await host.Rest.PostAsync("/platform/agents/billing-router/complete",
            new StringContent("""{"prompt":"Where does this invoice go?"}""", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var message = (await TestHost.ReadObjectAsync(response))["message"]!.GetValue<string>();
        Assert.Contains("fake-openai/gpt-test failed", message, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-test-secret", message, StringComparison.Ordinal);

        var stats = await host.GetAsync("/platform/agents/billing-router/stats");
        Assert.Equal(1, WholeNumber(stats["failures"]));
    }

    [Fact]
    public async Task A_configured_embeddings_endpoint_embeds_semantic_memory()
    {
        var vector = string.Join(',', Enumerable.Range(0, 768).Select(i => i % 7 == 0 ? "2.0" : "0.5"));
        _provider.Given(Request.Create().WithPath("/v1/embeddings").UsingPost())
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody($$$"""
                {"object":"list","model":"embed-test","data":[{"object":"embedding","index":0,"embedding":[{{{vector}}}]}],
                 "usage":{"prompt_tokens":5,"total_tokens":5}}
                """));

        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated(),
            "--Memory:Embeddings:Kind", "openai",
            "--Memory:Embeddings:Endpoint", $"{_provider.Url}/v1",
            "--Memory:Embeddings:Model", "embed-test",
            "--Memory:Embeddings:Dimensions", "768",
            "--Memory:Embeddings:ApiKeySecret", KeyVariable);
        var (status, first) = await host.CompleteAsync("embedded-agent", new { prompt = "Remember the blue folder" });
        Assert.Equal(200, status);
        var (_, second) = await host.CompleteAsync("embedded-agent", new { prompt = "Which folder?" });

        // Every text gets the same fake vector, so the first interaction is recalled for the second.
        Assert.Contains(first["interactionId"]!.GetValue<string>(), second["memoryIds"]!.AsArray().Select(m => m!.GetValue<string>()));
        var stats = await host.GetAsync("/platform/agents/embedded-agent/stats");
        Assert.StartsWith("embed-test (768 dims", stats["memory"]!["embedder"]!.GetValue<string>(), StringComparison.Ordinal);
        var call = _provider.LogEntries.First(e => e.RequestMessage.Path == "/v1/embeddings");
        Assert.Contains("\"dimensions\":768", call.RequestMessage.Body, StringComparison.Ordinal);
        Assert.Equal("Bearer sk-test-secret", call.RequestMessage.Headers!["Authorization"].Single());
    }
}
