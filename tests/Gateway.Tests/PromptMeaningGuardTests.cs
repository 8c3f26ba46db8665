using PersistentAgents.Embeddings;

namespace PersistentAgents.Gateway.Tests;

public sealed class PromptMeaningGuardTests
{
    private const string Email = """
        Hello, I ordered a blender with order {0} on March 3 and it arrived broken.
        Please tell me how to get it replaced. Regards, Dana
        """;

    [Theory]
    [InlineData("4471", "4417")]
    [InlineData("4471", "4471-B")]
    public void Another_order_number_in_an_otherwise_identical_email_is_refused(string one, string other)
    {
        var verdict = PromptMeaningGuard.Compare(Email.Replace("{0}", one, StringComparison.Ordinal), Email.Replace("{0}", other, StringComparison.Ordinal));

        Assert.False(verdict.MayShareAnswer);
        Assert.Equal(PromptDifference.NumbersOrIdentifiers, verdict.Difference);
        Assert.Contains(one.ToLowerInvariant(), verdict.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Set the dose to 3.5 mg", "Set the dose to 35 mg")]
    [InlineData("Set the limit to -5", "Set the limit to 5")]
    [InlineData("Is x<5 true here?", "Is x>5 true here?")]
    [InlineData("What is 2+2?", "What is 2*2?")]
    [InlineData("What is 2 + 2?", "What is 2 * 2?")]
    [InlineData("Forward invoice INV-2231 to accounting", "Forward invoice INV-2213 to accounting")]
    [InlineData("Send the report to anna@example.com", "Send the report to ben@example.com")]
    [InlineData("Summarise https://example.com/a", "Summarise https://example.com/b")]
    [InlineData("What is the weather in Paris today?", "What is the weather in Lyon today?")]
    public void Other_numbers_identifiers_operators_or_names_are_refused(string one, string other) =>
        Assert.Equal(PromptDifference.NumbersOrIdentifiers, PromptMeaningGuard.Compare(one, other).Difference);

    [Theory]
    [InlineData("Should I refund the customer for the broken blender?", "Should I not refund the customer for the broken blender?")]
    [InlineData("I want a refund for the blender", "I don't want a refund for the blender")]
    [InlineData("Ship it with the charger", "Ship it without the charger")]
    [InlineData("Ship the blue one instead of the red one", "Ship the blue one and the red one")]
    [InlineData("The customer can pay by card", "The customer cannot pay by card")]
    public void An_added_negation_is_refused(string one, string other) =>
        Assert.Equal(PromptDifference.Negation, PromptMeaningGuard.Compare(one, other).Difference);

    [Theory]
    [InlineData("The customer wants a refund, not a replacement.", "The customer wants a replacement, not a refund.")]
    [InlineData("Alice pays Bob", "Bob pays Alice")]
    [InlineData("Move the meeting from 3 to 5", "Move the meeting from 5 to 3")]
    [InlineData("I do not want a refund, I want a replacement", "I want a refund, I do not want a replacement")]
    public void The_same_words_with_swapped_roles_are_refused(string one, string other) =>
        Assert.Equal(PromptDifference.WordOrder, PromptMeaningGuard.Compare(one, other).Difference);

    [Theory]
    [InlineData("Quote the price of the blender with VAT included", "Quote the price of the blender with VAT excluded")]
    [InlineData("Please approve the refund for the blender that arrived broken last week", "Please reject the refund for the blender that arrived broken last week")]
    [InlineData("Can I refund all items?", "Can I refund some items?")]
    [InlineData("How do I reset my password?", "Why do I reset my password?")]
    public void A_content_word_in_one_prompt_only_is_refused(string one, string other)
    {
        var verdict = PromptMeaningGuard.Compare(one, other);

        Assert.Equal(PromptDifference.ContentWords, verdict.Difference);
        Assert.StartsWith("different content words: ", verdict.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("How do I reset my password?", "Comment réinitialiser mon mot de passe ?", "fr")]
    [InlineData("How do I reset my password?", "Wie setze ich mein Passwort zurück?", "de")]
    [InlineData("How do I reset my password?", "¿Cómo restablezco mi contraseña?", "es")]
    [InlineData("How do I reset my password?", "Как сбросить мой пароль?", "cyrillic")]
    public void The_same_question_in_another_language_is_refused(string english, string translated, string language)
    {
        var verdict = PromptMeaningGuard.Compare(english, translated);

        Assert.Equal(PromptDifference.Language, verdict.Difference);
        Assert.Equal($"different languages: en and {language}", verdict.Reason);
    }

    [Theory]
    [InlineData("How do I reset my password?", "how can I reset my password")]
    [InlineData("Where does invoice 4471 go?", "where does the invoice 4471 go")]
    [InlineData("Please summarise the attached reports.", "Summarise the attached report")]
    [InlineData("Translate “good morning” into French", "translate \"Good morning\" into French.")]
    [InlineData("Alice pays Bob", "alice pays bob")]
    public void Paraphrases_that_differ_in_case_punctuation_function_words_or_a_plural_pass(string one, string other)
    {
        var verdict = PromptMeaningGuard.Compare(one, other);

        Assert.True(verdict.MayShareAnswer, verdict.Reason);
        Assert.Equal(GuardVerdict.Same, verdict);
    }
}
