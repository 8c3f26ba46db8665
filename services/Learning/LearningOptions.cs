namespace PersistentAgents.Learning;

public sealed class LearningOptions
{
    /// <summary>
    /// Per-outcome decay of the evidence of every arm in a group. 0.99 keeps about the last 100 outcomes:
    /// enough to tell arms a few points apart, short enough that an arm left alone is tried again.
    /// </summary>
    public double Discount { get; set; } = 0.99;

    /// <summary>How many outcomes the catalog prior is worth.</summary>
    public double PriorStrength { get; set; } = 2;

    /// <summary>The success rate a new arm is assumed to have.</summary>
    public double PriorReliability { get; set; } = 0.95;

    /// <summary>The cost/quality policy of an agent that names none (see <see cref="CostPolicy"/>).</summary>
    public string DefaultPolicy { get; set; } = "balanced";

    /// <summary>Prompts at or above this complexity (0..1) are learned apart as "complex".</summary>
    public double ComplexityThreshold { get; set; } = 0.5;

    /// <summary>Output tokens assumed when estimating what a call will cost.</summary>
    public int ExpectedOutputTokens { get; set; } = 500;

    /// <summary>Weight of the fast moving average that watches each arm for drift.</summary>
    public double DriftSmoothing { get; set; } = 0.1;

    /// <summary>
    /// How far (in reward, 0..1) the recent average may stray from the arm's estimate before its old
    /// evidence is dropped: a drift detector, so a degraded arm loses traffic in tens of calls rather than
    /// waiting for the discount.
    /// </summary>
    public double DriftThreshold { get; set; } = 0.15;

    /// <summary>Calls observed since the last reset before the detector may fire.</summary>
    public int DriftMinSamples { get; set; } = 12;

    /// <summary>How many outcomes the recent average is worth after a reset.</summary>
    public double DriftResetWeight { get; set; } = 8;

    /// <summary>How many outcomes one explicit feedback score is worth in the quality estimate.</summary>
    public double FeedbackWeight { get; set; } = 1;

    /// <summary>Selections kept per agent for learning curves and traffic shares.</summary>
    public int HistoryPerAgent { get; set; } = 5_000;
}
