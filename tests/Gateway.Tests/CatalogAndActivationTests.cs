using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;

namespace PersistentAgents.Gateway.Tests;

public sealed class CatalogAndActivationTests
{
    private const string Catalog = """
        simulated: always
        providers:
          - name: claude
            kind: anthropic
            apiKeySecret: TEST_ANTHROPIC_KEY
            models:
              - name: claude-test
                capabilities: [json, tools, streaming]
          - name: openai
            kind: openai
            endpoint: http://127.0.0.1:9/v1
            apiKeySecret: TEST_OPENAI_KEY
            models:
              - name: gpt-test
          - name: sim-a
            models:
              - name: a1
                simulation: { midStreamFailureRate: 0.25 }
              - name: a2
          - name: sim-b
            models:
              - name: b1
        """;

    [Fact]
    public void An_anthropic_provider_needs_no_endpoint_and_models_declare_capabilities()
    {
        var catalog = ProviderCatalog.Parse(Catalog, "test");

        var claude = catalog.Providers[0];
        Assert.Null(claude.Endpoint);
        Assert.Equal(["json", "tools", "streaming"], claude.Models[0].Capabilities);
        Assert.True(claude.Models[0].Has("tools"));
        Assert.Equal(["streaming"], catalog.Providers[1].Models[0].Capabilities);
        Assert.False(catalog.Providers[1].Models[0].Has("tools"));
        Assert.Equal(0.25, catalog.Providers[2].Models[0].Simulation!.For("any").MidStreamFailureRate);
    }

    [Theory]
    [InlineData("endpoint: not a url", "providers[0].endpoint: must be an absolute http or https URL")]
    [InlineData("endpoint: ftp://example.com", "providers[0].endpoint: must be an absolute http or https URL")]
    [InlineData("apiKeySecret: ''", "providers[0].apiKeySecret: is required for kind anthropic")]
    public void A_malformed_anthropic_provider_is_refused_naming_the_field(string line, string expected)
    {
        var yaml = $"""
            providers:
              - name: claude
                kind: anthropic
                apiKeySecret: KEY
                {line}
                models:
                  - name: claude-test
            """;
        var lines = yaml.Split('\n').ToList();
        if (line.StartsWith("apiKeySecret", StringComparison.Ordinal))
        {
            lines.RemoveAt(3); // the valid apiKeySecret line, so only the empty one stays
        }

        var error = Assert.Throws<CatalogException>(() => ProviderCatalog.Parse(string.Join('\n', lines), "test"));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_capability_is_refused_naming_it()
    {
        const string yaml = """
            providers:
              - name: sim
                models:
                  - name: m
                    capabilities: [streaming, telepathy]
            """;

        var error = Assert.Throws<CatalogException>(() => ProviderCatalog.Parse(yaml, "test"));

        Assert.Contains("providers[0].models[0].capabilities[1]: 'telepathy' is not one of", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mid_stream_failure_rate_out_of_range_is_refused()
    {
        const string yaml = """
            providers:
              - name: sim
                models:
                  - name: m
                    simulation: { midStreamFailureRate: 1.5 }
            """;

        var error = Assert.Throws<CatalogException>(() => ProviderCatalog.Parse(yaml, "test"));

        Assert.Contains("providers[0].models[0].simulation.midStreamFailureRate: must be between 0 and 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Providers_with_keys_become_chat_client_adapters_and_simulated_ones_are_reachable_by_name()
    {
        using var provider = Services(new Dictionary<string, string> { ["TEST_ANTHROPIC_KEY"] = FakeProvider.Key });

        var active = provider.GetRequiredService<ActiveProviders>();

        var claude = Assert.IsType<ChatClientProvider>(active.Models.Single(m => m.Definition.Name == "claude-test").Provider);
        Assert.Equal(ProviderKind.Anthropic, claude.Kind);
        Assert.False(claude.Simulated);
        Assert.Contains(active.ProvidersWithoutKey, p => p.StartsWith("openai", StringComparison.Ordinal));

        var simA = active.Simulated("sim-a");
        Assert.NotNull(simA);
        Assert.All(active.Models.Where(m => m.Definition.Name is "a1" or "a2"), m => Assert.Same(simA, m.Provider));
        Assert.NotSame(simA, active.Simulated("sim-b"));
        Assert.Null(active.Simulated("claude"));
        Assert.Null(active.Simulated("nope"));

        simA.Override(null, null, 0.05);
        Assert.Equal(0.05, simA.CurrentBehaviour(active.Models.Single(m => m.Definition.Name == "a2").Definition, "t").Quality);
        Assert.Equal(0.7, active.Simulated("sim-b")!.CurrentBehaviour(active.Models.Single(m => m.Definition.Name == "b1").Definition, "t").Quality);
    }

    private static ServiceProvider Services(Dictionary<string, string> secrets)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<ISecretSource>(new DictionarySecrets(secrets));
        services.AddGateway(ProviderCatalog.Parse(Catalog, "test"));
        return services.BuildServiceProvider();
    }

    private sealed class DictionarySecrets(Dictionary<string, string> secrets) : ISecretSource
    {
        public string? GetSecret(string name) => secrets.GetValueOrDefault(name);
    }
}
