using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Gateway.Providers;
using PersistentAgents.Contracts;
using PersistentAgents.Gateway.Catalog;

namespace PersistentAgents.Gateway;

/// <summary>
/// Operator routes of the gateway. <c>PUT /admin/providers/{name}/simulation</c> changes a simulated
/// provider's failure rate, latency or quality while it runs, so that demos and chaos tests can break a
/// provider and heal it; <c>DELETE</c> on the same route gives it back its catalog behaviour.
/// </summary>
public static class AdminEndpoints
{
    private static readonly string[] Settings = ["failureRate", "latencyMs", "quality", "midStreamFailureRate", "toolCalls"];

    public static IEndpointRouteBuilder MapGatewayAdminApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPut("/admin/providers/{name}/simulation", async (string name, HttpContext context, ActiveProviders providers) =>
        {
            if (providers.Simulated(name) is not { } provider)
            {
                return Error(StatusCodes.Status404NotFound, $"name: no simulated provider {ErrorText.Quote(name)} is active");
            }

            Dictionary<string, double> values;
            SimulatedToolCalls? toolCalls = null;
            try
            {
                using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
                if (body.RootElement.ValueKind != JsonValueKind.Object)
                {
                    return Error(StatusCodes.Status400BadRequest, "body: must be a JSON object");
                }

                values = [];
                foreach (var property in body.RootElement.EnumerateObject())
                {
                    if (!Settings.Contains(property.Name))
                    {
                        return Error(StatusCodes.Status400BadRequest, $"{property.Name}: is not a simulation setting ({string.Join(", ", Settings)})");
                    }

                    if (property.Name == "toolCalls")
                    {
                        toolCalls = property.Value.ValueKind == JsonValueKind.String && property.Value.GetString() is "auto" or "never"
                            ? (property.Value.GetString() == "auto" ? SimulatedToolCalls.Auto : SimulatedToolCalls.Never)
                            : null;
                        if (toolCalls is null)
                        {
                            return Error(StatusCodes.Status400BadRequest, "toolCalls: must be \"auto\" or \"never\"");
                        }

                        continue;
                    }

                    if (property.Value.ValueKind != JsonValueKind.Number)
                    {
                        return Error(StatusCodes.Status400BadRequest, $"{property.Name}: must be a JSON number");
                    }

                    values[property.Name] = property.Value.GetDouble();
                }
            }
            catch (JsonException e)
            {
                return Error(StatusCodes.Status400BadRequest, $"body: is not valid JSON (line {e.LineNumber + 1})");
            }

            // Settings left out keep the override they had.
            var current = provider.CurrentOverride;
            try
            {
                provider.Override(
                    values.TryGetValue("failureRate", out var failureRate) ? failureRate : current.FailureRate,
                    values.TryGetValue("latencyMs", out var latencyMs) ? latencyMs : current.LatencyMs,
                    values.TryGetValue("quality", out var quality) ? quality : current.Quality,
                    values.TryGetValue("midStreamFailureRate", out var midStream) ? midStream : current.MidStreamFailureRate,
                    toolCalls ?? current.ToolCalls);
            }
            catch (ArgumentOutOfRangeException e)
            {
                return Error(StatusCodes.Status400BadRequest, e.Message.Split(" (Parameter", 2)[0]);
            }

            return Results.Ok(Describe(name, provider.CurrentOverride));
        });

        routes.MapDelete("/admin/providers/{name}/simulation", (string name, ActiveProviders providers) =>
        {
            if (providers.Simulated(name) is not { } provider)
            {
                return Error(StatusCodes.Status404NotFound, $"name: no simulated provider {ErrorText.Quote(name)} is active");
            }

            provider.ResetOverride();
            return Results.Ok(Describe(name, provider.CurrentOverride));
        });
        return routes;
    }

    private static object Describe(string name, SimulationOverride current) => new
    {
        provider = name,
        failureRate = current.FailureRate,
        latencyMs = current.LatencyMs,
        quality = current.Quality,
        midStreamFailureRate = current.MidStreamFailureRate,
        toolCalls = current.ToolCalls?.ToString().ToLowerInvariant(),
    };

    private static IResult Error(int status, string message) =>
        Results.Json(new { code = status == StatusCodes.Status404NotFound ? 5 : 3, message, details = Array.Empty<object>() }, statusCode: status);
}
