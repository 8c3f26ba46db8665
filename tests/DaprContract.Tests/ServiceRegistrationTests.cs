using Dapr.Client;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using PersistentAgents.Embeddings;
using PersistentAgents.Memory;
using PersistentAgents.Memory.Dapr;

namespace PersistentAgents.DaprContract.Tests;

public sealed class ServiceRegistrationTests
{
    [Theory]
    [InlineData(BlobFlavour.S3)]
    [InlineData(BlobFlavour.AzureBlob)]
    [InlineData(BlobFlavour.LocalStorage)]
    public void AddDaprMemoryStores_registers_the_three_dapr_adapters_on_the_registered_client_and_embedder(BlobFlavour flavour)
    {
        using var client = new DaprClientBuilder().UseGrpcEndpoint("http://127.0.0.1:1").UseHttpEndpoint("http://127.0.0.1:2").Build();
        using var embedder = new HashedNGramEmbedder(dimensions: 256);
        using var services = new ServiceCollection()
            .AddSingleton(client)
            .AddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(embedder)
            .AddDaprMemoryStores(flavour)
            .BuildServiceProvider();

        Assert.IsType<DaprWorkingMemoryStore>(services.GetRequiredService<IWorkingMemoryStore>());
        var vectors = Assert.IsType<PgVectorStore>(services.GetRequiredService<IVectorStore>());
        Assert.Equal("hashed-ngrams@256", vectors.Embedder);
        Assert.Equal(256, vectors.Dimensions);
        Assert.Equal(flavour, Assert.IsType<BlobEpisodeStore>(services.GetRequiredService<IEpisodeStore>()).Flavour);
        Assert.Same(client, services.GetRequiredService<DaprClient>());
    }
}
