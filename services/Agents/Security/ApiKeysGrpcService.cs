using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.Security;

/// <summary>API-key management for admins, over gRPC and (JSON transcoding) <c>/admin/keys</c>.</summary>
[Authorize(Policy = Tenancy.AdminPolicy)]
public sealed class ApiKeysGrpcService(IApiKeyStore keys, TimeProvider timeProvider) : ApiKeys.ApiKeysBase
{
    public const int MaxKeyNameLength = 128;

    /// <summary>A key may not allow more than this many requests per minute (100 per second).</summary>
    public const int MaxRequestsPerMinute = 6_000;

    public override async Task<CreatedApiKey> CreateApiKey(CreateApiKeyRequest request, ServerCallContext context)
    {
        CompleteRequestValidator.ValidateName("tenant", request.Tenant);
        if (request.Name.Length > MaxKeyNameLength || request.Name.Any(char.IsControl))
        {
            throw Invalid($"name: must be at most {MaxKeyNameLength} characters without control characters");
        }

        var scope = request.Scope.Length == 0 ? Tenancy.UserScope : request.Scope;
        if (scope is not (Tenancy.UserScope or Tenancy.AdminScope))
        {
            throw Invalid($"scope: must be '{Tenancy.UserScope}' or '{Tenancy.AdminScope}'");
        }

        if (request.RequestsPerMinute is < 0 or > MaxRequestsPerMinute)
        {
            throw Invalid($"requestsPerMinute: must be from 0 (the host's default) to {MaxRequestsPerMinute}");
        }

        var secret = ApiKeyFormat.NewSecret();
        var record = new ApiKeyRecord(
            ApiKeyFormat.NewId(), ApiKeyFormat.HashOf(secret), request.Tenant, request.Name, scope,
            secret[..ApiKeyFormat.ShownPrefixLength], request.RequestsPerMinute, timeProvider.GetUtcNow());
        await keys.AddAsync(record, context.CancellationToken);
        return new CreatedApiKey { Info = InfoOf(record), Key = secret };
    }

    public override async Task<ApiKeyList> ListApiKeys(ListApiKeysRequest request, ServerCallContext context)
    {
        if (request.Tenant.Length > 0)
        {
            CompleteRequestValidator.ValidateName("tenant", request.Tenant);
        }

        var list = new ApiKeyList();
        list.Keys.AddRange((await keys.ListAsync(context.CancellationToken))
            .Where(k => request.Tenant.Length == 0 || k.Tenant == request.Tenant)
            .OrderBy(k => k.CreatedAt)
            .Select(InfoOf));
        return list;
    }

    public override async Task<ApiKeyInfo> RevokeApiKey(RevokeApiKeyRequest request, ServerCallContext context)
    {
        if (request.Id.Length is 0 or > 64)
        {
            throw Invalid("id: is required (at most 64 characters)");
        }

        var revoked = await keys.RevokeAsync(request.Id, timeProvider.GetUtcNow(), context.CancellationToken)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"id: no API key '{request.Id}'"));
        return InfoOf(revoked);
    }

    private static ApiKeyInfo InfoOf(ApiKeyRecord key) => new()
    {
        Id = key.Id,
        Tenant = key.Tenant,
        Name = key.Name,
        Scope = key.Scope,
        Prefix = key.Prefix,
        RequestsPerMinute = key.RequestsPerMinute,
        CreatedAt = Timestamp.FromDateTimeOffset(key.CreatedAt),
        RevokedAt = key.RevokedAt is { } revoked ? Timestamp.FromDateTimeOffset(revoked) : null,
    };

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));
}
