namespace PersistentAgents.Learning;

public sealed class LearningOptions
{
    /// <summary>
    /// Per-outcome decay of the evidence of every arm in a group. 0.998 keeps about the last 500 outcomes:
    /// enough to tell arms a few hundredths of utility apart without exploring the expensive ones for ever.
    /// Sudden drops are the drift detector's job and recoveries the probes', not the discount's.
    /// </summary>
    public double Discount { get; set; } = 0.998;

    /// <summary>
    /// An arm whose estimated success rate is below this, or whose last <see cref="DownAfterFailures"/> calls
    /// all failed, is treated as down: it goes to the end of the chain and is only probed.
    /// </summary>
    public double DownReliability { get; set; } = 0.5;

    /// <summary>Failed calls in a row after which an arm is down.</summary>
    public int DownAfterFailures { get; set; } = 3;

    /// <summary>
    /// A down arm is tried first once every this many outcomes of its group, like a circuit breaker's
    /// half-open call; the rest of the fallback chain still serves the request if it fails. A success
    /// clears its failures, so a recovered provider wins its traffic back within tens of interactions.
    /// </summary>
    public int ProbeInterval { get; set; } = 25;

    /// <summary>
    /// The smallest spread (standard deviation) assumed for the quality of one reply. The quality posterior
    /// is Normal with the observed spread, so arms a few hundredths apart are told apart in tens of replies
    /// rather than the hundreds a Bernoulli model of a 0..1 score would need; the floor keeps it exploring.
    /// </summary>
    public double MinQualitySpread { get; set; } = 0.05;

    /// <summary>The quality spread assumed before an arm has replied twice.</summary>
    public double PriorQualitySpread { get; set; } = 0.2;

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
    public double DriftSmoothing { get; set; } = 0.2;

    /// <summary>
    /// How many standard errors the recent average reward may fall below the arm's estimate before its old
    /// evidence is dropped: a one-sided drift detector, so a degraded arm loses traffic in tens of calls
    /// rather than waiting for the discount, while the odd failure of a good arm does not set it off.
    /// </summary>
    public double DriftZ { get; set; } = 5;

    /// <summary>The smallest fall in reward (0..1) the drift detector acts on.</summary>
    public double DriftMinDrop { get; set; } = 0.08;

    /// <summary>Standard deviation assumed for the quality of one reply, in the detector's noise estimate.</summary>
    public double QualityNoise { get; set; } = 0.05;

    /// <summary>
    /// The smallest spread the detector assumes for one call's reward: an arm just forgiven, or one that has
    /// never failed, looks nearly noiseless, and the first ordinary failure must not read as drift.
    /// </summary>
    public double DriftMinRewardSpread { get; set; } = 0.15;

    /// <summary>Calls observed since the last reset before the detector may fire.</summary>
    public int DriftMinSamples { get; set; } = 8;

    /// <summary>How many outcomes the recent average is worth after a reset.</summary>
    public double DriftResetWeight { get; set; } = 8;

    /// <summary>How many outcomes one explicit feedback score is worth in the quality estimate.</summary>
    public double FeedbackWeight { get; set; } = 1;

    /// <summary>
    /// Agents whose arms stay in memory; past this the least recently used are let go (their arms are in the
    /// store) and read back on their next interaction. An agent has one arm per task type, complexity
    /// bucket and model it has been routed over.
    /// </summary>
    public int ResidentAgents { get; set; } = 1_000;

    /// <summary>Selections kept per agent for learning curves and traffic shares.</summary>
    public int HistoryPerAgent { get; set; } = 5_000;
}
