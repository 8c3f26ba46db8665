namespace PersistentAgents.Learning.Tests;

public sealed class BetaDistributionTests
{
    [Theory]
    [InlineData(2.0, 5.0)]
    [InlineData(0.5, 0.5)]
    [InlineData(30.0, 4.0)]
    public void The_mean_of_many_samples_is_alpha_over_alpha_plus_beta(double alpha, double beta)
    {
        var random = new Random(42);
        const int Count = 20_000;
        var sum = 0.0;
        for (var i = 0; i < Count; i++)
        {
            var sample = BetaDistribution.Sample(alpha, beta, random);
            Assert.InRange(sample, 0, 1);
            sum += sample;
        }

        Assert.Equal(alpha / (alpha + beta), sum / Count, tolerance: 0.02);
    }
}
