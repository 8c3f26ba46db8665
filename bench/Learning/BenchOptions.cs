using System.Globalization;

namespace PersistentAgents.Bench.Learning;

internal sealed record BenchOptions(int Steps, IReadOnlyList<string> Scenarios, int SamplingSeeds, bool WriteReadme, string? ReadmePath, bool Help)
{
    public const string Usage = """
        Usage: dotnet run -c Release --project bench/Learning [-- options]
          --steps N            interactions per scenario (default 4000); change points scale with it
          --scenario NAME      run one scenario: stationary, drift, outage-recovery or complexity-mix (default: all)
          --sampling-seeds N   run ours again with sampling seeds scenario seed + 1 … + N over the same world (default 8)
          --write-readme       put the tables into bench/README.md between <!-- learning:begin --> and <!-- learning:end -->
          --readme PATH        the README --write-readme updates (default: bench/README.md)
          --help               this text
        Charts go to bench/Learning/results/regret-{scenario}.svg on every run.
        """;

    public const int DefaultSamplingSeeds = 8;

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions(Learning.Scenarios.DefaultSteps, Learning.Scenarios.Names, DefaultSamplingSeeds, WriteReadme: false, ReadmePath: null, Help: false);
        for (var i = 0; i < args.Count; i++)
        {
            options = args[i] switch
            {
                "--steps" => options with { Steps = ParseSteps(Value(args, ref i)) },
                "--scenario" => options with { Scenarios = [ParseScenario(Value(args, ref i))] },
                "--sampling-seeds" => options with { SamplingSeeds = ParseSamplingSeeds(Value(args, ref i)) },
                "--write-readme" => options with { WriteReadme = true },
                "--readme" => options with { ReadmePath = Value(args, ref i) },
                "--help" or "-h" => options with { Help = true },
                var unknown => throw new ArgumentException($"unknown option '{unknown}'"),
            };
        }

        return options;
    }

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        if (i + 1 >= args.Count)
        {
            throw new ArgumentException($"{args[i]} needs a value");
        }

        return args[++i];
    }

    private static int ParseSteps(string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var steps) && steps >= 100
            ? steps
            : throw new ArgumentException($"--steps: '{value}' is not a whole number of at least 100");

    private static int ParseSamplingSeeds(string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seeds) && seeds >= 1
            ? seeds
            : throw new ArgumentException($"--sampling-seeds: '{value}' is not a whole number of at least 1");

    private static string ParseScenario(string value) =>
        Learning.Scenarios.Names.Contains(value, StringComparer.Ordinal)
            ? value
            : throw new ArgumentException($"--scenario: '{value}' is not one of {string.Join(", ", Learning.Scenarios.Names)}");
}
