using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace PersistentAgents.Gateway.Catalog;

/// <summary>When simulated providers take traffic.</summary>
public enum SimulatedMode
{
    /// <summary>Only when no real provider has its API key configured.</summary>
    Auto,
    Always,
    Never,
}

/// <summary>The provider catalog file (YAML): providers, their models, prices and behaviour.</summary>
public sealed class ProviderCatalog
{
    public SimulatedMode Simulated { get; set; } = SimulatedMode.Auto;

    public List<ProviderDefinition> Providers { get; set; } = [];

    public static ProviderCatalog Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new CatalogException($"catalog: file '{path}' does not exist");
        }

        return Parse(File.ReadAllText(path), path);
    }

    public static ProviderCatalog Parse(string yaml, string source)
    {
        var deserializer = new DeserializerBuilder()
            .WithNamingConvention(CamelCaseNamingConvention.Instance)
            .WithEnumNamingConvention(LowerCaseNamingConvention.Instance)
            .Build();
        ProviderCatalog? catalog;
        try
        {
            catalog = deserializer.Deserialize<ProviderCatalog>(yaml);
        }
        catch (YamlException e)
        {
            throw new CatalogException($"catalog {source}: {e.Message} (line {e.Start.Line})", e);
        }

        catalog ??= new ProviderCatalog();
        catalog.Validate(source);
        return catalog;
    }

    private void Validate(string source)
    {
        if (Providers.Count == 0)
        {
            throw new CatalogException($"catalog {source}: providers: at least one provider is required");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Providers.Count; i++)
        {
            var provider = Providers[i];
            var at = $"catalog {source}: providers[{i}]";
            if (string.IsNullOrWhiteSpace(provider.Name))
            {
                throw new CatalogException($"{at}.name: is required");
            }

            if (!names.Add(provider.Name))
            {
                throw new CatalogException($"{at}.name: '{provider.Name}' is declared twice");
            }

            if (provider.Kind == ProviderKind.Openai && string.IsNullOrWhiteSpace(provider.Endpoint))
            {
                throw new CatalogException($"{at}.endpoint: is required for kind openai");
            }

            if (provider.Kind == ProviderKind.Anthropic)
            {
                if (provider.Endpoint is not null
                    && (!Uri.TryCreate(provider.Endpoint, UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttps && endpoint.Scheme != Uri.UriSchemeHttp)))
                {
                    throw new CatalogException($"{at}.endpoint: must be an absolute http or https URL (default {ProviderDefinition.DefaultAnthropicEndpoint})");
                }

                if (string.IsNullOrWhiteSpace(provider.ApiKeySecret))
                {
                    throw new CatalogException($"{at}.apiKeySecret: is required for kind anthropic");
                }
            }

            if (provider.TimeoutSeconds is <= 0 or > 600)
            {
                throw new CatalogException($"{at}.timeoutSeconds: must be between 0 and 600");
            }

            if (provider.Models.Count == 0)
            {
                throw new CatalogException($"{at}.models: at least one model is required");
            }

            for (var j = 0; j < provider.Models.Count; j++)
            {
                provider.Models[j].Validate($"{at}.models[{j}]", provider.Kind);
            }
        }
    }
}

public enum ProviderKind
{
    Simulated,
    Openai,
    Anthropic,
}

public sealed class ProviderDefinition
{
    public string Name { get; set; } = "";

    public ProviderKind Kind { get; set; } = ProviderKind.Simulated;

    /// <summary>The Messages API's address when <see cref="Endpoint"/> is not set on an anthropic provider.</summary>
    public const string DefaultAnthropicEndpoint = "https://api.anthropic.com";

    /// <summary>
    /// Base address of an OpenAI-compatible API, e.g. https://api.openai.com/v1 (required for kind openai), or of the
    /// Anthropic Messages API without /v1 (kind anthropic; default https://api.anthropic.com, set it for a proxy).
    /// </summary>
    public string? Endpoint { get; set; }

    /// <summary>The name of the secret (environment variable in embedded mode) that holds the API key.</summary>
    public string? ApiKeySecret { get; set; }

    public double TimeoutSeconds { get; set; } = 30;

    public List<ModelDefinition> Models { get; set; } = [];
}

public sealed class ModelDefinition
{
    public string Name { get; set; } = "";

    /// <summary>USD per one million input tokens.</summary>
    public double InputPricePerMTok { get; set; }

    /// <summary>USD per one million output tokens.</summary>
    public double OutputPricePerMTok { get; set; }

    public int ContextWindow { get; set; } = 128_000;

    /// <summary>Declared quality 0..1: the learning prior for a task type never seen.</summary>
    public double Quality { get; set; } = 0.7;

    /// <summary>
    /// The capability names a model may declare. "prefill": it accepts a conversation that ends with an assistant
    /// message and continues it.
    /// </summary>
    public static readonly IReadOnlyList<string> KnownCapabilities = ["json", "tools", "streaming", "vision", "prefill"];

    /// <summary>A streamed call that has sent nothing for this long fails over to the next candidate.</summary>
    public double FirstTokenSeconds { get; set; } = 10;

    /// <summary>A streamed call that sends nothing more for this long, before or during its reply, fails over (or, once text was sent, breaks).</summary>
    public double StallSeconds { get; set; } = 10;

    /// <summary>What the model can do beyond plain chat, from <see cref="KnownCapabilities"/>; every adapter streams.</summary>
    public List<string> Capabilities { get; set; } = ["streaming"];

    /// <summary>Behaviour of a simulated model.</summary>
    public SimulationDefinition? Simulation { get; set; }

    public bool Has(string capability) => Capabilities.Contains(capability, StringComparer.Ordinal);

    internal void Validate(string at, ProviderKind kind)
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw new CatalogException($"{at}.name: is required");
        }

        if (InputPricePerMTok < 0 || OutputPricePerMTok < 0)
        {
            throw new CatalogException($"{at}: prices must not be negative");
        }

        if (Quality is < 0 or > 1)
        {
            throw new CatalogException($"{at}.quality: must be between 0 and 1");
        }

        if (ContextWindow <= 0)
        {
            throw new CatalogException($"{at}.contextWindow: must be positive");
        }

        if (FirstTokenSeconds is <= 0 or > 600)
        {
            throw new CatalogException($"{at}.firstTokenSeconds: must be between 0 and 600");
        }

        if (StallSeconds is <= 0 or > 600)
        {
            throw new CatalogException($"{at}.stallSeconds: must be between 0 and 600");
        }

        Capabilities ??= [];
        for (var k = 0; k < Capabilities.Count; k++)
        {
            if (!KnownCapabilities.Contains(Capabilities[k], StringComparer.Ordinal))
            {
                throw new CatalogException(
                    $"{at}.capabilities[{k}]: '{Capabilities[k]}' is not one of {string.Join(", ", KnownCapabilities)}");
            }
        }

        if (kind == ProviderKind.Simulated)
        {
            Simulation ??= new SimulationDefinition { Quality = Quality };
            Simulation.Validate($"{at}.simulation");
        }
    }
}

public sealed class SimulationDefinition
{
    public double Quality { get; set; } = 0.7;

    public double FailureRate { get; set; }

    public double LatencyMs { get; set; } = 20;

    /// <summary>Share of streamed replies that break after some words (a failure after text was sent).</summary>
    public double MidStreamFailureRate { get; set; }

    /// <summary>Per task type overrides of quality, failure rate and latency.</summary>
    public Dictionary<string, SimulationBehaviour> TaskTypes { get; set; } = [];

    /// <summary>Whether a model with the "tools" capability calls a tool the request declares.</summary>
    public SimulatedToolCalls ToolCalls { get; set; } = SimulatedToolCalls.Auto;

    public SimulationBehaviour For(string taskType)
    {
        var fallback = new SimulationBehaviour
        {
            Quality = Quality, FailureRate = FailureRate, LatencyMs = LatencyMs, MidStreamFailureRate = MidStreamFailureRate,
        };
        return TaskTypes.TryGetValue(taskType, out var specific)
            ? new SimulationBehaviour
            {
                Quality = specific.Quality ?? fallback.Quality,
                FailureRate = specific.FailureRate ?? fallback.FailureRate,
                LatencyMs = specific.LatencyMs ?? fallback.LatencyMs,
                MidStreamFailureRate = specific.MidStreamFailureRate ?? fallback.MidStreamFailureRate,
            }
            : fallback;
    }

    internal void Validate(string at)
    {
        Check(at, new SimulationBehaviour
        {
            Quality = Quality, FailureRate = FailureRate, LatencyMs = LatencyMs, MidStreamFailureRate = MidStreamFailureRate,
        });
        foreach (var (taskType, behaviour) in TaskTypes)
        {
            Check($"{at}.taskTypes.{taskType}", behaviour);
        }
    }

    private static void Check(string at, SimulationBehaviour behaviour)
    {
        if (behaviour.Quality is < 0 or > 1)
        {
            throw new CatalogException($"{at}.quality: must be between 0 and 1");
        }

        if (behaviour.FailureRate is < 0 or > 1)
        {
            throw new CatalogException($"{at}.failureRate: must be between 0 and 1");
        }

        if (behaviour.LatencyMs is < 0 or > 600_000)
        {
            throw new CatalogException($"{at}.latencyMs: must be between 0 and 600000");
        }

        if (behaviour.MidStreamFailureRate is < 0 or > 1)
        {
            throw new CatalogException($"{at}.midStreamFailureRate: must be between 0 and 1");
        }
    }
}

/// <summary>When a simulated model calls a declared tool.</summary>
public enum SimulatedToolCalls
{
    /// <summary>As a model would: when tools are declared, the choice allows a call, and no tool result came last.</summary>
    Auto,

    /// <summary>Never: it always answers in text.</summary>
    Never,
}

public sealed class SimulationBehaviour
{
    public double? Quality { get; set; }

    public double? FailureRate { get; set; }

    public double? LatencyMs { get; set; }

    public double? MidStreamFailureRate { get; set; }
}

public sealed class CatalogException : Exception
{
    public CatalogException(string message)
        : base(message)
    {
    }

    public CatalogException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
