namespace PersistentAgents.Cli;

/// <summary>
/// The prompts of a simulated workload, spread evenly over the task types and of three complexities: short
/// requests, requests that ask for a little reasoning, and long ones with reasoning words, code and several
/// questions. The host learns easy and hard prompts apart, so a run teaches it both. The same seed gives
/// the same prompts, so that two runs against two hosts compare.
/// </summary>
public sealed class SimulatedPrompts(IReadOnlyList<string> taskTypes, int seed)
{
    private static readonly string[] Subjects =
    [
        "an invoice the customer disputes for the second time",
        "a password reset email that never arrives",
        "a contract renewal that adds a new liability clause",
        "a shipping delay on an urgent hospital order",
        "a refund for a subscription cancelled within the trial",
        "a request to delete every record of a former employee",
        "a partner who wants to extend the term of the NDA",
        "exported reports that lose rows past ten thousand",
    ];

    private static readonly string[] Snippets =
    [
        "SELECT id, total FROM invoices WHERE customer_id = 4471 AND disputed = 1;",
        "def export(rows): return [r for r in rows[:10000]]",
        "public decimal Refund(Subscription s) { return s.Paid - s.Used; }",
    ];

    private readonly Random _random = new(seed);

    public (string TaskType, string Prompt) Next(int number)
    {
        var taskType = taskTypes[number % taskTypes.Count];
        var subject = Subjects[_random.Next(Subjects.Length)];
        var prompt = _random.Next(4) switch
        {
            0 or 1 => $"Case {number}: {subject}. Where should it go?",
            2 => $"Case {number}: {subject}. The customer wrote twice and mentions a deadline next week. " +
                "Summarise the request and explain who should handle it.",
            _ => $"Case {number}: {subject}. Analyze the thread below step by step, compare the options and justify " +
                "the trade-offs of each before you recommend one.\n```\n" + Snippets[_random.Next(Snippets.Length)] + "\n```\n" +
                "The customer has escalated once already, the account is worth a six-figure sum a year, the contract " +
                "promises an answer within two working days and the team that owns the product is in another time zone. " +
                "Which team owns it? What should the reply promise, and by when?",
        };
        return (taskType, prompt);
    }
}
