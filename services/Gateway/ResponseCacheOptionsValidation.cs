using System.Globalization;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using PersistentAgents.Embeddings;

namespace PersistentAgents.Gateway;

/// <summary>
/// Checks the <c>Cache</c> settings at start-up: a semantic threshold where near-identical prompts are not
/// yet each other's paraphrases is refused, and so is semantic caching over a lexical embedder.
/// </summary>
public sealed class ResponseCacheOptionsValidation(IEmbeddingGenerator<string, Embedding<float>> embedder) : IValidateOptions<ResponseCacheOptions>
{
    public const double MinimumSemanticThreshold = 0.9;

    public ValidateOptionsResult Validate(string? name, ResponseCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (!(options.SemanticThreshold is >= MinimumSemanticThreshold and <= 1))
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"Cache:SemanticThreshold: must be from {MinimumSemanticThreshold} to 1, was {options.SemanticThreshold}"));
        }

        if (options.Enabled && options.Semantic && Embedders.IsLexical(embedder))
        {
            failures.Add("Cache:Semantic: the hashed n-gram embedder is lexical: prompts that differ in one number score above any threshold; "
                + "configure a model embedder (Memory:Embeddings:Kind=minilm) or leave Cache:Semantic off");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
