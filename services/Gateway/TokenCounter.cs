using Microsoft.ML.Tokenizers;

namespace PersistentAgents.Gateway;

/// <summary>Counts tokens with the o200k tokenizer when a provider does not report usage.</summary>
public sealed class TokenCounter
{
    private readonly Tokenizer _tokenizer = TiktokenTokenizer.CreateForEncoding("o200k_base");

    public int Count(string text) => string.IsNullOrEmpty(text) ? 0 : _tokenizer.CountTokens(text);
}
