using System.Text;

namespace PersistentAgents.EndToEnd.Tests.Faults;

/// <summary>The embedded host over fake upstreams, one catalog provider (kind openai) per fake, in candidate order.</summary>
public static class FaultHost
{
    public const string KeyVariable = "PA_TEST_FAULTS_OPENAI_KEY";

    /// <summary>The API key every fake provider gets, from <see cref="KeyVariable"/>.</summary>
    public const string Key = "sk-fault-test";

    /// <summary>
    /// Limits at test scale: 1 s to the first token and 1 s of stall per model (in the catalog; the providers' own
    /// timeout stays at 10 s, so that a test can tell which limit acted), a 5 s deadline for the whole request, two
    /// retries 20 ms apart, no response cache (each test repeats its prompts on purpose).
    /// </summary>
    public static readonly string[] Settings =
    [
        "--Resilience:RequestDeadline", "00:00:05",
        "--Resilience:MaxRetries", "2",
        "--Resilience:RetryBaseDelay", "00:00:00.020",
        "--Cache:Enabled", "false",
    ];

    private static readonly Lazy<Task> s_warmedUp = new(WarmUpAsync);

    public static Task<TestHost> StartAsync(params FakeProvider[] providers) => StartAsync(providers, []);

    public static async Task<TestHost> StartAsync(FakeProvider[] providers, string[] settings)
    {
        Environment.SetEnvironmentVariable(KeyVariable, Key);
        await s_warmedUp.Value;
        return await TestHost.StartAsync(TestHost.NewDataDir(), Catalog(providers), [.. Settings, .. settings]);
    }

    /// <summary>
    /// One streamed and one plain call through a provider of kind openai, once per test run: the first call in a
    /// process compiles Kestrel's, the SDK's and the gateway's paths, which on a busy machine can take longer than the
    /// 1 s limits under test, and would make a test's first attempt time out for a reason that is not its fault.
    /// </summary>
    private static async Task WarmUpAsync()
    {
        await using var upstream = await FakeOpenAiUpstream.StartAsync("warm-up");
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), Catalog([new FakeProvider("warm-up", upstream)]), Settings);
        await ChatCall.StreamAsync(host, "Warm up the streamed path");
        await ChatCall.CompleteAsync(host, "Warm up the plain path");
    }

    public static string Catalog(IEnumerable<FakeProvider> providers)
    {
        var yaml = new StringBuilder("simulated: never\nproviders:\n");
        foreach (var p in providers)
        {
            yaml.Append(System.Globalization.CultureInfo.InvariantCulture, $"""
                  - name: {p.Name}
                    kind: openai
                    endpoint: {p.Upstream.Endpoint}
                    apiKeySecret: {KeyVariable}
                    timeoutSeconds: 10
                    models:
                      - name: {p.Upstream.Model}
                        inputPricePerMTok: {p.InputPricePerMTok}
                        outputPricePerMTok: {p.OutputPricePerMTok}
                        contextWindow: {p.ContextWindow}
                        quality: 0.8
                        capabilities: [{string.Join(", ", p.Capabilities)}]
                        firstTokenSeconds: 1
                        stallSeconds: 1

                """);
        }

        return yaml.ToString();
    }
}

/// <summary>A catalog provider served by a fake upstream, with the model's prices, context window and capabilities.</summary>
public sealed record FakeProvider(string Name, FakeOpenAiUpstream Upstream)
{
    public double InputPricePerMTok { get; init; } = 1.0;

    public double OutputPricePerMTok { get; init; } = 2.0;

    public int ContextWindow { get; init; } = 128_000;

    public IReadOnlyList<string> Capabilities { get; init; } = ["streaming"];
}
