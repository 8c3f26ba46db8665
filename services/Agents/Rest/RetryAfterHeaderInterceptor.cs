using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Http;

namespace PersistentAgents.Agents.Rest;

/// <summary>
/// JSON transcoding answers a refused call with its status and message and drops the exception's trailers, so a
/// budget refusal's <c>retry-after</c> trailer is copied to the HTTP <c>Retry-After</c> header here for REST
/// callers. gRPC callers read the trailer itself: in a trailers-only answer the trailers already travel as
/// headers, and a second copy would give the key two values.
/// </summary>
public sealed class RetryAfterHeaderInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        try
        {
            return await continuation(request, context);
        }
        catch (RpcException e)
        {
            var http = context.GetHttpContext();
            if (!http.Response.HasStarted && http.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) != true)
            {
                RestError.SetRetryAfter(http.Response, e);
            }

            throw;
        }
    }
}
