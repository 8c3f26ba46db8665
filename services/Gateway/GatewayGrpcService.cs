using Grpc.Core;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Gateway;

/// <summary>The gateway's gRPC face, for the other services in distributed mode.</summary>
public sealed class GatewayGrpcService(IGatewayApi gateway) : Contracts.V1.Gateway.GatewayBase
{
    public override Task<GatewayReply> Complete(GatewayRequest request, ServerCallContext context) =>
        gateway.CompleteAsync(request, context.CancellationToken);

    public override Task<ModelCatalog> ListModels(ListModelsRequest request, ServerCallContext context) =>
        gateway.ListModelsAsync(request, context.CancellationToken);

    public override Task<ProviderHealthReply> GetProviderHealth(ProviderHealthRequest request, ServerCallContext context) =>
        gateway.GetProviderHealthAsync(request, context.CancellationToken);

    public override Task<BudgetState> GetBudget(BudgetRequest request, ServerCallContext context) =>
        gateway.GetBudgetAsync(request, context.CancellationToken);
}
