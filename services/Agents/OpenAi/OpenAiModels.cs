using Google.Protobuf.Collections;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;

namespace PersistentAgents.Agents.OpenAi;

/// <summary>
/// The gateway's catalog as OpenAI models: <c>GET /v1/models</c>, and the arms a request's <c>model</c>
/// names. Persistent agents (<c>agent/&lt;name&gt;</c>) are not listed: an agent comes into being with its
/// first turn, so there is no closed list of them to give.
/// </summary>
internal sealed class OpenAiModels(Func<IGatewayApi> gateway, TimeProvider time)
{
    /// <summary>How long the model index built from the catalog is trusted before it is listed again.</summary>
    private static readonly TimeSpan IndexLifetime = TimeSpan.FromSeconds(5);

    private volatile ModelIndex? _index;

    public async Task ListAsync(HttpContext context)
    {
        ModelCatalog catalog;
        try
        {
            catalog = await gateway().ListModelsAsync(new ListModelsRequest(), context.RequestAborted);
        }
        catch (RpcException e)
        {
            // The gateway app out of reach (distributed mode): said in OpenAI's shape, like every other error here.
            await OpenAiJson.SendErrorAsync(context.Response, OpenAiError.Of(e));
            return;
        }

        var writer = OpenAiJson.Rent(out var buffer);
        writer.WriteStartObject();
        writer.WriteString("object"u8, "list"u8);
        writer.WriteStartArray("data"u8);
        foreach (var entry in catalog.Models)
        {
            writer.WriteStartObject();
            writer.WriteString("id"u8, $"{entry.Arm.Provider}/{entry.Arm.Model}");
            writer.WriteString("object"u8, "model"u8);
            writer.WriteNumber("created"u8, 0);
            writer.WriteString("owned_by"u8, entry.Arm.Provider);
            writer.WriteString("kind"u8, entry.Kind);
            writer.WriteBoolean("simulated"u8, entry.Simulated);
            writer.WriteNumber("input_price_per_mtok"u8, entry.InputPricePerMtok);
            writer.WriteNumber("output_price_per_mtok"u8, entry.OutputPricePerMtok);
            writer.WriteNumber("context_window"u8, entry.ContextWindow);
            writer.WriteStartArray("capabilities"u8);
            foreach (var capability in entry.Capabilities)
            {
                writer.WriteStringValue(capability);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        await OpenAiJson.SendAsync(context.Response, StatusCodes.Status200OK, writer, buffer);
    }

    /// <summary>Adds the arms <paramref name="model"/> names to <paramref name="candidates"/>; false when it names none.</summary>
    public async ValueTask<bool> TryResolveAsync(string model, RepeatedField<ArmRef> candidates, CancellationToken cancellationToken)
    {
        var index = _index;
        if (index is null || time.GetElapsedTime(index.BuiltAt) >= IndexLifetime)
        {
            var catalog = await gateway().ListModelsAsync(new ListModelsRequest(), cancellationToken);
            index = new ModelIndex(catalog, time.GetTimestamp());
            _index = index;
        }

        return index.TryResolve(model, candidates);
    }

    /// <summary>The catalog's arms by "provider/model" id and by bare model name, in catalog order.</summary>
    private sealed class ModelIndex
    {
        private readonly (string Provider, string Model)[] _all;
        private readonly Dictionary<string, (string Provider, string Model)[]> _byName = new(StringComparer.Ordinal);

        public ModelIndex(ModelCatalog catalog, long builtAt)
        {
            BuiltAt = builtAt;
            _all = [.. catalog.Models.Select(m => (m.Arm.Provider, m.Arm.Model))];
            foreach (var group in _all.GroupBy(a => a.Model, StringComparer.Ordinal))
            {
                _byName[group.Key] = [.. group];
            }

            // Full ids win over a bare name that happens to look like one (model names may contain '/').
            foreach (var arm in _all)
            {
                _byName[$"{arm.Provider}/{arm.Model}"] = [arm];
            }
        }

        public long BuiltAt { get; }

        public bool TryResolve(string model, RepeatedField<ArmRef> candidates)
        {
            var arms = model == "auto" ? _all : _byName.GetValueOrDefault(model);
            if (arms is null || arms.Length == 0)
            {
                return false;
            }

            foreach (var (provider, name) in arms)
            {
                candidates.Add(new ArmRef { Provider = provider, Model = name });
            }

            return true;
        }
    }
}
