namespace PersistentAgents.Gateway.Tests;

public sealed class CacheKeyNormalizerTests
{
    [Theory]
    [InlineData("Reset my password.", "reset my password")]
    [InlineData("  Reset   MY\tpassword\n", "reset my password")]
    [InlineData("Reset my password?!", "reset my password")]
    [InlineData("\"Reset my password!\"", "reset my password")]
    [InlineData("Translate “Good morning” please.", "translate good morning please")]
    [InlineData("Is it 'done'? Yes.", "is it done yes")]
    [InlineData("He said \"stop.\" Then he left.", "he said stop then he left")]
    [InlineData("Wait . now", "wait now")]
    [InlineData("Don't stop.", "don't stop")]
    [InlineData("Version 3.5.", "version 3.5")]
    [InlineData("A 5' 10\" man", "a 5' 10\" man")]
    [InlineData("What is 5!", "what is 5!")]
    [InlineData("e.g. this", "e.g this")]
    public void Folds_case_whitespace_sentence_final_punctuation_and_wrapping_quotes(string text, string normalized) =>
        Assert.Equal(normalized, CacheKeyNormalizer.Normalize(text));

    [Theory]
    [InlineData("What is 2+2?", "What is 2*2?")]
    [InlineData("Is x<5?", "Is x>5?")]
    [InlineData("Set it to 3.5", "Set it to 35")]
    [InlineData("Set it to -5", "Set it to 5")]
    [InlineData("What is 5!", "What is 5")]
    [InlineData("Order 4471", "Order 4417")]
    [InlineData("a, b", "a b")]
    [InlineData("user_id", "userid")]
    public void Keeps_every_symbol_inside_or_next_to_a_digit_or_word(string one, string other) =>
        Assert.NotEqual(CacheKeyNormalizer.Normalize(one), CacheKeyNormalizer.Normalize(other));
}
