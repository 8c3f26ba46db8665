using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>A chat-completions request as <see cref="OpenAiChatRequestReader"/> read it from the headers and the body.</summary>
internal sealed class OpenAiChatRequest
{
    /// <summary>Models named <c>agent/&lt;name&gt;</c> are persistent agents, not catalog models.</summary>
    public const string AgentModelPrefix = "agent/";

    /// <summary>Everything the gateway needs but the candidates, which come from <see cref="Model"/>.</summary>
    public GatewayRequest Gateway { get; } = new();

    /// <summary>"provider/model", a bare model name, "auto", or "agent/&lt;name&gt;".</summary>
    public string Model { get; set; } = "";

    public bool Stream { get; set; }

    /// <summary><c>stream_options.include_usage</c>: a last chunk with the usage and no choices.</summary>
    public bool IncludeUsage { get; set; }

    /// <summary>The <c>x-pa-session</c> header: an agent model's working-memory session; empty for the default.</summary>
    public string SessionId { get; set; } = "";

    /// <summary>The agent's name when <see cref="Model"/> names one, else null.</summary>
    public string? AgentName => Model.StartsWith(AgentModelPrefix, StringComparison.Ordinal) ? Model[AgentModelPrefix.Length..] : null;
}
