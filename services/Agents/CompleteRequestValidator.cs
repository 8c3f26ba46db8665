using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents;

/// <summary>A complete request that passed validation, with its defaults filled in.</summary>
public sealed record ValidCompleteRequest(
    string Prompt, string TaskType, string SessionId, string? ContextJson, bool NoCache = false, string Policy = "", string ResponseFormat = "text");

/// <summary>
/// Checks every field before anything is read or stored. Names are restricted to lowercase letters,
/// digits, '-' and '_' so that they can never escape a key prefix or blob path, nor collide by case.
/// </summary>
public static partial class CompleteRequestValidator
{
    public const string DefaultTaskType = "general";
    public const string DefaultSessionId = "default";

    public static void ValidateAgentName(string agent) => CheckName("agent", agent);

    public static void ValidateName(string field, string value) => CheckName(field, value);

    public static bool IsValidName(string value) => NamePattern().IsMatch(value);

    public static bool IsValidSessionId(string value) => SessionPattern().IsMatch(value);

    public static ValidCompleteRequest Validate(CompleteRequest request, AgentLimits limits)
    {
        ValidateAgentName(request.Agent);
        if (string.IsNullOrWhiteSpace(request.Prompt))
        {
            throw Invalid("prompt: must not be empty");
        }

        if (request.Prompt.Length > limits.MaxPromptChars)
        {
            throw Invalid($"prompt: is {request.Prompt.Length} characters, the limit is {limits.MaxPromptChars}");
        }

        var taskType = request.TaskType.Length == 0 ? DefaultTaskType : request.TaskType;
        CheckName("taskType", taskType);

        var sessionId = ValidSessionId(request.SessionId);

        string? contextJson = null;
        if (request.Context is { Fields.Count: > 0 })
        {
            var size = request.Context.CalculateSize();
            if (size > limits.MaxContextBytes)
            {
                throw Invalid($"context: is {size} bytes, the limit is {limits.MaxContextBytes}");
            }

            if (request.Context.Fields.Count > limits.MaxContextEntries)
            {
                throw Invalid($"context: has {request.Context.Fields.Count} entries, the limit is {limits.MaxContextEntries}");
            }

            if (DepthOf(request.Context) > limits.MaxContextDepth)
            {
                throw Invalid($"context: nests deeper than {limits.MaxContextDepth} levels");
            }

            contextJson = JsonFormatter.Default.Format(request.Context);
        }

        if (request.Policy.Length > 0 && !CostPolicy.TryParse(request.Policy, out _))
        {
            throw Invalid(CostPolicy.Describe("policy", request.Policy));
        }

        var responseFormat = request.ResponseFormat.Length == 0 ? "text" : request.ResponseFormat;
        if (responseFormat is not ("text" or "json"))
        {
            throw Invalid($"responseFormat: {ErrorText.Quote(request.ResponseFormat)} is not one of text, json");
        }

        return new ValidCompleteRequest(request.Prompt, taskType, sessionId, contextJson, request.NoCache, request.Policy, responseFormat);
    }

    public static string ValidSessionId(string sessionId)
    {
        var valid = sessionId.Length == 0 ? DefaultSessionId : sessionId;
        return SessionPattern().IsMatch(valid)
            ? valid
            : throw Invalid("sessionId: must be 1 to 128 characters of letters, digits, '.', ':', '-' or '_'");
    }

    /// <summary>A recall request for the memory service, with defaults filled in; the caller sets the agent.</summary>
    public static RecallRequest ValidRecall(AgentRecallRequest request, AgentLimits limits)
    {
        if (string.IsNullOrWhiteSpace(request.Query))
        {
            throw Invalid("query: must not be empty");
        }

        if (request.Query.Length > limits.MaxPromptChars)
        {
            throw Invalid($"query: is {request.Query.Length} characters, the limit is {limits.MaxPromptChars}");
        }

        if (request.TopK < 0 || request.TopK > limits.MaxRecallTopK)
        {
            throw Invalid($"topK: must be between 1 and {limits.MaxRecallTopK} (0 for the default, {limits.RecallTopK})");
        }

        if (request.MinSimilarity is < -1 or > 1 || double.IsNaN(request.MinSimilarity))
        {
            throw Invalid("minSimilarity: must be between -1 and 1");
        }

        if (request.TaskType.Length > 0)
        {
            CheckName("taskType", request.TaskType);
        }

        return new RecallRequest
        {
            Query = request.Query,
            TopK = request.TopK == 0 ? limits.RecallTopK : request.TopK,
            MinSimilarity = request.MinSimilarity,
            TaskType = request.TaskType,
            SuccessfulOnly = request.SuccessfulOnly,
        };
    }

    /// <summary>The episodes route's page size: 0 for the default, else at most the configured page.</summary>
    public static int ValidEpisodesLimit(int limit, AgentLimits limits) =>
        limit >= 0 && limit <= limits.MaxEpisodesPage
            ? limit
            : throw Invalid($"limit: must be from 1 to {limits.MaxEpisodesPage} (0 for the default, 100)");

    private static int DepthOf(Struct value) => 1 + value.Fields.Values.Select(DepthOf).DefaultIfEmpty(0).Max();

    private static int DepthOf(Value value) => value.KindCase switch
    {
        Value.KindOneofCase.StructValue => DepthOf(value.StructValue),
        Value.KindOneofCase.ListValue => 1 + value.ListValue.Values.Select(DepthOf).DefaultIfEmpty(0).Max(),
        _ => 0,
    };

    private static void CheckName(string field, string value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw Invalid($"{field}: is required");
        }

        if (value.Length > 64)
        {
            throw Invalid($"{field}: is {value.Length} characters, the limit is 64");
        }

        if (!NamePattern().IsMatch(value))
        {
            throw Invalid($"{field}: must start with a lowercase letter or digit and hold only lowercase letters, digits, '-' and '_'");
        }
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,63}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex SessionPattern();
}
