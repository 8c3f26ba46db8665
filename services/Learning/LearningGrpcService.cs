using Grpc.Core;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Learning;

/// <summary>The learning service's gRPC face, for the other services in distributed mode.</summary>
public sealed class LearningGrpcService(ILearningApi learning) : Contracts.V1.Learning.LearningBase
{
    public override Task<RankReply> Rank(RankRequest request, ServerCallContext context) =>
        learning.RankAsync(request, context.CancellationToken);

    public override Task<RecordOutcomeReply> RecordOutcome(InteractionCompleted request, ServerCallContext context) =>
        learning.RecordOutcomeAsync(request, context.CancellationToken);

    public override Task<RecordOutcomeReply> RecordFeedback(FeedbackRecorded request, ServerCallContext context) =>
        learning.RecordFeedbackAsync(request, context.CancellationToken);

    public override Task<ScoresReply> GetScores(GetScoresRequest request, ServerCallContext context) =>
        learning.GetScoresAsync(request, context.CancellationToken);

    public override Task<SelectionHistory> GetHistory(GetHistoryRequest request, ServerCallContext context) =>
        learning.GetHistoryAsync(request, context.CancellationToken);

    public override Task<Experiment> PutExperiment(Experiment request, ServerCallContext context) =>
        learning.PutExperimentAsync(request, context.CancellationToken);

    public override Task<DeleteExperimentReply> DeleteExperiment(DeleteExperimentRequest request, ServerCallContext context) =>
        learning.DeleteExperimentAsync(request, context.CancellationToken);

    public override Task<ExperimentResults> GetExperiments(GetExperimentsRequest request, ServerCallContext context) =>
        learning.GetExperimentsAsync(request, context.CancellationToken);
}
