using System.Diagnostics;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace PersistentAgents.Agents;

/// <summary>
/// How one turn meets a failing dependency (in distributed mode an <see cref="RpcException"/> from the sidecar,
/// in embedded mode whatever the in-process service throws). A step the turn can do without is skipped and
/// named in the reply's <c>degraded</c>; a step it cannot do without refuses the turn as UNAVAILABLE. Either
/// way a failure caused by the caller cancelling is the caller's, and goes back to it unchanged.
/// </summary>
/// <param name="degraded">Receives one entry per skipped step: "&lt;component&gt;: &lt;what was skipped&gt; (&lt;why&gt;)".</param>
internal sealed class TurnFaults(AgentId agent, string interactionId, Activity? turn, ICollection<string> degraded, ILogger logger, CancellationToken callerToken)
{
    /// <summary>
    /// The step's result, or <paramref name="without"/> when it fails; <paramref name="component"/> is the
    /// failing dependency and <paramref name="skipped"/> says what the turn went without.
    /// </summary>
    public async Task<T> OrDegradedAsync<T>(string component, string skipped, Func<CancellationToken, Task<T>> step, Func<T> without)
    {
        try
        {
            return await step(callerToken);
        }
        catch (Exception e) when (!callerToken.IsCancellationRequested)
        {
            var entry = $"{component}: {skipped} ({ReasonOf(e)})";
            degraded.Add(entry);
            logger.LogWarning(e, "Agent {Agent} interaction {InteractionId} degraded: {Degradation}", agent, interactionId, entry);
            AgentsTelemetry.Degraded(turn, component, entry);
            return without();
        }
    }

    /// <inheritdoc cref="OrDegradedAsync{T}"/>
    public Task OrDegradedAsync(string component, string skipped, Func<CancellationToken, Task> step) =>
        OrDegradedAsync(component, skipped, async token => { await step(token); return true; }, () => false);

    /// <summary>The step's result; when it fails the turn is refused as UNAVAILABLE with <paramref name="refusal"/> of the reason.</summary>
    public async Task<T> OrUnavailableAsync<T>(Func<string, string> refusal, Func<CancellationToken, Task<T>> step)
    {
        try
        {
            return await step(callerToken);
        }
        catch (Exception e) when (!callerToken.IsCancellationRequested)
        {
            var message = refusal(ReasonOf(e));
            logger.LogError(e, "Agent {Agent} interaction {InteractionId} refused: {Refusal}", agent, interactionId, message);
            turn?.SetStatus(ActivityStatusCode.Error, message);
            throw new RpcException(new Status(StatusCode.Unavailable, message));
        }
    }

    /// <inheritdoc cref="OrUnavailableAsync{T}"/>
    public Task OrUnavailableAsync(Func<string, string> refusal, Func<CancellationToken, Task> step) =>
        OrUnavailableAsync(refusal, async token => { await step(token); return true; });

    private static string ReasonOf(Exception e) => e switch
    {
        RpcException { Status.Detail.Length: > 0 } rpc => $"{rpc.StatusCode}: {rpc.Status.Detail}",
        RpcException rpc => rpc.StatusCode.ToString(),
        _ => e.Message,
    };
}
