using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Analytics;

/// <summary>
/// Where finished interactions go for analysis. Delivery is at least once, so writing the same outcome
/// twice must leave one record.
/// </summary>
public interface IInteractionSink
{
    Task WriteAsync(InteractionCompleted outcome, CancellationToken cancellationToken);
}
