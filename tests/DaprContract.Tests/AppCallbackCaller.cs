using Dapr.AppCallback.Autogen.Grpc.v1;
using Google.Protobuf;
using Grpc.Net.Client;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// Calls an app's <c>dapr.proto.runtime.v1.AppCallback</c> service as its sidecar does. Dapr.Protos has the
/// service base for apps but no client for it, so the methods are bound here from its message parsers.
/// </summary>
public sealed class AppCallbackCaller(GrpcChannel channel)
{
    private const string Service = "dapr.proto.runtime.v1.AppCallback";
    private readonly Grpc.Core.CallInvoker _invoker = channel.CreateCallInvoker();

    public async Task<ListTopicSubscriptionsResponse> ListTopicSubscriptionsAsync(Google.Protobuf.WellKnownTypes.Empty request) =>
        await _invoker.AsyncUnaryCall(Method("ListTopicSubscriptions", Google.Protobuf.WellKnownTypes.Empty.Parser, ListTopicSubscriptionsResponse.Parser), null, new Grpc.Core.CallOptions(), request);

    public async Task<TopicEventResponse> OnTopicEventAsync(TopicEventRequest request) =>
        await _invoker.AsyncUnaryCall(Method("OnTopicEvent", TopicEventRequest.Parser, TopicEventResponse.Parser), null, new Grpc.Core.CallOptions(), request);

    private static Grpc.Core.Method<TRequest, TResponse> Method<TRequest, TResponse>(string name, MessageParser<TRequest> requestParser, MessageParser<TResponse> responseParser)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        new(Grpc.Core.MethodType.Unary, Service, name,
            Grpc.Core.Marshallers.Create(m => m.ToByteArray(), requestParser.ParseFrom),
            Grpc.Core.Marshallers.Create(m => m.ToByteArray(), responseParser.ParseFrom));
}
