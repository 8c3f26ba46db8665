using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Host;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// The embedded host on real Kestrel sockets on 127.0.0.1 (free ports), over a data folder that outlives
/// one host so that a test can stop it and start another on the same data.
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestHost(WebApplication app, string dataDir, Uri rest, Uri grpc)
    {
        _app = app;
        DataDir = dataDir;
        Rest = new HttpClient { BaseAddress = rest };
        Grpc = GrpcChannel.ForAddress(grpc);
    }

    public string DataDir { get; }

    public HttpClient Rest { get; }

    public GrpcChannel Grpc { get; }

    public static Task<TestHost> StartAsync(string dataDir, string catalogYaml, params string[] settings) =>
        StartAsync(dataDir, catalogYaml, overrides: null, settings);

    /// <param name="overrides">Replaces registrations of the host (see <see cref="EmbeddedHost.Build"/>), e.g. to inject faults.</param>
    public static async Task<TestHost> StartAsync(string dataDir, string catalogYaml, Action<IServiceCollection>? overrides, params string[] settings)
    {
        Directory.CreateDirectory(dataDir);
        var catalogPath = Path.Combine(dataDir, "test-catalog.yaml");
        await File.WriteAllTextAsync(catalogPath, catalogYaml);
        var app = EmbeddedHost.Build([
            "--urls", "http://127.0.0.1:0",
            "--grpc-urls", "http://127.0.0.1:0",
            "--data-dir", dataDir,
            "--catalog", catalogPath,
            "--Logging:LogLevel:Default", "Warning",
            // The lexical embedder unless a test asks for the model: most tests need no sentence model, and
            // loading it in every test host would cost each one about a second and 160 MB.
            "--Memory:Embeddings:Kind", "hashed",
            .. settings,
        ], overrides);
        await app.StartAsync();
        var addresses = app.ListeningAddresses();
        return new TestHost(app, dataDir, addresses[0], addresses[1]);
    }

    public static string NewDataDir() => Path.Combine(Path.GetTempPath(), "pa-tests", Guid.NewGuid().ToString("N"));

    public async Task<(int Status, JsonObject Body)> CompleteAsync(string agent, object body)
    {
        using var response = await Rest.PostAsJsonAsync($"/platform/agents/{agent}/complete", body);
        return ((int)response.StatusCode, await ReadObjectAsync(response));
    }

    public async Task<JsonObject> GetAsync(string path)
    {
        using var response = await Rest.GetAsync(path);
        var body = await ReadObjectAsync(response);
        Assert.True(response.IsSuccessStatusCode, $"GET {path} answered {(int)response.StatusCode}: {body}");
        return body;
    }

    public async Task<(int Status, JsonObject Body)> SendAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        using var response = await Rest.SendAsync(request);
        return ((int)response.StatusCode, await ReadObjectAsync(response));
    }

    public static async Task<JsonObject> ReadObjectAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())?.AsObject() ?? [];

    public IEnumerable<JsonObject> Episodes(string agent, string tenant = Contracts.Tenancy.DefaultTenant)
    {
        var directory = Path.Combine(DataDir, "episodes", tenant, agent);
        return Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, "*.json", SearchOption.AllDirectories)
                .Select(f => JsonNode.Parse(File.ReadAllText(f))!.AsObject())
            : [];
    }

    public async ValueTask DisposeAsync()
    {
        Rest.Dispose();
        Grpc.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Catalogs for tests: fast simulated providers with known prices and quality; only sim-fair answers JSON.</summary>
public static class TestCatalogs
{
    public static string Simulated(double bestFailureRate = 0) => $"""
        simulated: always
        providers:
          - name: sim-best
            kind: simulated
            models:
              - name: best
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.7
                simulation: {"{"} quality: 0.95, failureRate: {bestFailureRate.ToString(System.Globalization.CultureInfo.InvariantCulture)}, latencyMs: 2 {"}"}
          - name: sim-fair
            kind: simulated
            models:
              - name: fair
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.7
                capabilities: [streaming, json]
                simulation: {"{"} quality: 0.55, failureRate: 0, latencyMs: 2 {"}"}
          - name: sim-poor
            kind: simulated
            models:
              - name: poor
                inputPricePerMTok: 1.0
                outputPricePerMTok: 2.0
                quality: 0.7
                simulation: {"{"} quality: 0.3, failureRate: 0, latencyMs: 2 {"}"}
        """;
}

public static class JsonAssert
{
    public static double Number(JsonNode? node) => node!.GetValue<JsonElement>().GetDouble();

    public static long WholeNumber(JsonNode? node) => node!.GetValue<JsonElement>().ValueKind == JsonValueKind.String
        ? long.Parse(node.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture)
        : node.GetValue<JsonElement>().GetInt64();
}
