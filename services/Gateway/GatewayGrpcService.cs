using Grpc.Core;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Gateway;

/// <summary>The gateway's gRPC face, for the other services in distributed mode.</summary>
public sealed class GatewayGrpcService(IGatewayApi gateway) : Contracts.V1.Gateway.GatewayBase
{
    public override Task<GatewayReply> Complete(GatewayRequest request, ServerCallContext context) =>
        gateway.CompleteAsync(request, context.CancellationToken);

    /// <summary>
    /// Each piece of the reply as it is made, then the final reply. The caller going away cancels the call
    /// context, and with it the provider's stream.
    /// </summary>
    public override async Task CompleteStream(GatewayRequest request, IServerStreamWriter<GatewayStreamEvent> responseStream, ServerCallContext context)
    {
        var reply = await gateway.CompleteStreamingAsync(
            request,
            (delta, token) => new ValueTask(responseStream.WriteAsync(new GatewayStreamEvent { Delta = delta }, token)),
            context.CancellationToken);
        await responseStream.WriteAsync(new GatewayStreamEvent { Final = reply }, context.CancellationToken);
    }

    public override Task<ModelCatalog> ListModels(ListModelsRequest request, ServerCallContext context) =>
        gateway.ListModelsAsync(request, context.CancellationToken);

    public override Task<ProviderHealthReply> GetProviderHealth(ProviderHealthRequest request, ServerCallContext context) =>
        gateway.GetProviderHealthAsync(request, context.CancellationToken);

    public override Task<BudgetState> GetBudget(BudgetRequest request, ServerCallContext context) =>
        gateway.GetBudgetAsync(request, context.CancellationToken);
}
