using Microsoft.Extensions.AI;

namespace PersistentAgents.Gateway.Tests;

/// <summary>
/// Stands in for a model embedder ("test-model", 4 dimensions): the vector <paramref name="embed"/> gives,
/// flagged as truncated when <paramref name="truncates"/>; counts the texts it embedded.
/// </summary>
internal sealed class StubEmbedder(Func<string, float[]> embed, bool truncates = false) : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly EmbeddingGeneratorMetadata _metadata = new("test", providerUri: null, "test-model", 4);
    private int _calls;

    public int Calls => _calls;

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v =>
        {
            Interlocked.Increment(ref _calls);
            return new Embedding<float>(embed(v)) { AdditionalProperties = truncates ? new() { ["truncated"] = true } : null };
        }).ToList()));

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(_metadata) ? _metadata : null;

    public void Dispose()
    {
    }
}
