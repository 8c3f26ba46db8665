using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Polly.CircuitBreaker;
using Polly.Timeout;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Gateway.Providers;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace PersistentAgents.Gateway;

/// <summary>A model the gateway can call: its provider adapter and its catalog entry.</summary>
public sealed record ActiveModel(IChatModelProvider Provider, ModelDefinition Definition);

/// <summary>
/// Tries the ranked candidates in order, each through its provider's resilience pipeline, and returns the
/// first reply with its tokens and cost, or every attempt when all failed.
/// </summary>
public sealed class GatewayService(
    IReadOnlyList<ActiveModel> models,
    ProviderResilience resilience,
    TokenCounter tokenCounter,
    TimeProvider timeProvider,
    ILogger<GatewayService> logger) : IGatewayApi
{
    private readonly Dictionary<(string Provider, string Model), ActiveModel> _byArm =
        models.ToDictionary(m => (m.Provider.Name, m.Definition.Name));

    public async Task<GatewayReply> CompleteAsync(GatewayRequest request, CancellationToken cancellationToken)
    {
        var started = timeProvider.GetTimestamp();
        var messages = request.Messages.Select(ToAiMessage).ToList();
        var inputText = string.Join('\n', request.Messages.Select(m => m.Content));
        var candidates = request.Candidates.Count > 0
            ? request.Candidates.ToList()
            : models.Select(m => new ArmRef { Provider = m.Provider.Name, Model = m.Definition.Name }).ToList();
        var reply = new GatewayReply { ReportedQuality = -1 };

        foreach (var arm in candidates)
        {
            if (!_byArm.TryGetValue((arm.Provider, arm.Model), out var model))
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "not in the active catalog" });
                continue;
            }

            var attemptStarted = timeProvider.GetTimestamp();
            try
            {
                var completion = await resilience.PipelineFor(arm.Provider).ExecuteAsync(
                    async token => await model.Provider.CompleteAsync(model.Definition, request.TaskType, messages, token),
                    cancellationToken);
                var tokensIn = completion.InputTokens ?? tokenCounter.Count(inputText);
                var tokensOut = completion.OutputTokens ?? tokenCounter.Count(completion.Text);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "succeeded", LatencyMs = ElapsedMs(attemptStarted) });
                reply.Success = true;
                reply.Text = completion.Text;
                reply.Arm = arm;
                reply.Simulated = model.Provider.Simulated;
                reply.TokensIn = tokensIn;
                reply.TokensOut = tokensOut;
                reply.CostUsd = CostOf(model.Definition, tokensIn, tokensOut);
                reply.ReferenceCostUsd = models.Max(m => CostOf(m.Definition, tokensIn, tokensOut));
                reply.ReportedQuality = completion.ReportedQuality ?? -1;
                break;
            }
            catch (BrokenCircuitException)
            {
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "skipped", Error = "circuit open" });
            }
            catch (Exception e) when (e is ProviderException or TimeoutRejectedException)
            {
                var error = e is TimeoutRejectedException ? "timed out" : e.Message;
                logger.LogWarning("Provider {Provider}/{Model} failed: {Error}", arm.Provider, arm.Model, error);
                reply.Attempts.Add(new Attempt { Arm = arm, Outcome = "failed", Error = error, LatencyMs = ElapsedMs(attemptStarted) });
            }
        }

        reply.LatencyMs = ElapsedMs(started);
        return reply;
    }

    public Task<ModelCatalog> ListModelsAsync(ListModelsRequest request, CancellationToken cancellationToken)
    {
        var catalog = new ModelCatalog();
        catalog.Models.AddRange(models.Select(m => new ModelEntry
        {
            Arm = new ArmRef { Provider = m.Provider.Name, Model = m.Definition.Name },
            Kind = m.Provider.Simulated ? "simulated" : "openai",
            InputPricePerMtok = m.Definition.InputPricePerMTok,
            OutputPricePerMtok = m.Definition.OutputPricePerMTok,
            PriorQuality = m.Definition.Quality,
            ContextWindow = m.Definition.ContextWindow,
            Simulated = m.Provider.Simulated,
        }));
        return Task.FromResult(catalog);
    }

    public Task<ProviderHealthReply> GetProviderHealthAsync(ProviderHealthRequest request, CancellationToken cancellationToken)
    {
        var reply = new ProviderHealthReply();
        reply.Providers.AddRange(models
            .Select(m => m.Provider)
            .DistinctBy(p => p.Name)
            .Select(p => new ProviderState { Provider = p.Name, Circuit = resilience.CircuitStateOf(p.Name), Simulated = p.Simulated }));
        return Task.FromResult(reply);
    }

    /// <summary>USD for the tokens at the model's catalog prices (per one million tokens).</summary>
    public static double CostOf(ModelDefinition model, long tokensIn, long tokensOut) =>
        ((tokensIn * model.InputPricePerMTok) + (tokensOut * model.OutputPricePerMTok)) / 1_000_000d;

    private double ElapsedMs(long since) => timeProvider.GetElapsedTime(since).TotalMilliseconds;

    private static AiChatMessage ToAiMessage(ChatMessage message) => new(
        message.Role switch
        {
            "system" => AiChatRole.System,
            "assistant" => AiChatRole.Assistant,
            _ => AiChatRole.User,
        },
        message.Content);
}
