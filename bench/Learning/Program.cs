// Learning-strategy simulator: seeded scenarios (stationary, drift, outage and recovery, a complexity mix)
// replayed against the seed's rule, round-robin, always-cheapest, always-best-quality, an oracle and ours
// (LearningService), side by side. Prints one markdown table per scenario and writes the regret curves as SVG.
// Ours is then run again with other sampling seeds over the same worlds, to show the spread a lucky seed would hide.
// Usage: dotnet run -c Release --project bench/Learning [-- --steps N] [--scenario NAME] [--sampling-seeds N] [--write-readme]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using PersistentAgents.Bench.Learning;
using PersistentAgents.Bench.Learning.Strategies;
using PersistentAgents.Contracts;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

if (options.Help)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

var repositoryRoot = RepositoryRoot();
var resultsDirectory = Path.Combine(repositoryRoot, "bench", "Learning", "results");
Directory.CreateDirectory(resultsDirectory);
var lambda = CostPolicy.Balanced;
var watch = Stopwatch.StartNew();
var results = new List<ScenarioResult>();
var serviceStrategy = string.Empty;
foreach (var name in options.Scenarios)
{
    var world = World.Generate(Scenarios.Create(name, options.Steps), lambda);
    using var ours = LearningServiceStrategy.Create(world.Scenario, samplingSeed: world.Scenario.Seed);
    IRoutingStrategy[] strategies =
    [
        new SeedRuleStrategy(world.Scenario.Arms),
        new RoundRobinStrategy(world.Scenario.Arms),
        FixedOrderStrategy.Cheapest(world.Scenario.Arms),
        FixedOrderStrategy.BestDeclaredQuality(world.Scenario.Arms),
        new OracleStrategy(world),
        ours,
    ];
    // Each strategy keeps its own state and the world is read-only, so they run side by side.
    var runs = await Task.WhenAll(strategies.Select(s => Task.Run(() => Simulation.RunAsync(world, s, CancellationToken.None))));
    // Only ours samples, so only ours is run again with other sampling seeds; the other runs would come out the same.
    var oursOverSamplingSeeds = await Task.WhenAll(Enumerable.Range(world.Scenario.Seed + 1, options.SamplingSeeds)
        .Select(samplingSeed => Task.Run(() => RunOursAsync(world, samplingSeed))));
    results.Add(new ScenarioResult(world, runs, oursOverSamplingSeeds));
    serviceStrategy = ours.ServiceStrategy;

    File.WriteAllText(ChartPath(name), RegretChart.Svg(results[^1]));
}

watch.Stop();
var header = Invariant($"{options.Steps} interactions per scenario, λ = {lambda} (balanced); ours = LearningService (strategy \"{serviceStrategy}\"); ran in {watch.Elapsed.TotalSeconds:F1} s");
Console.WriteLine(header);
Console.WriteLine();
Console.Write(Report.Tables(results, chartLink: _ => null));
Console.WriteLine();
foreach (var result in results)
{
    Console.WriteLine($"wrote {Path.GetRelativePath(repositoryRoot, ChartPath(result.Scenario.Name))}");
}

if (options.WriteReadme)
{
    var readmePath = options.ReadmePath ?? Path.Combine(repositoryRoot, "bench", "README.md");
    var readmeDirectory = Path.GetDirectoryName(Path.GetFullPath(readmePath))!;
    var section = new StringBuilder()
        .Append("## Learning: routing strategies in a simulator\n\n")
        .Append("```bash\n")
        .Append("dotnet run -c Release --project bench/Learning                        # every scenario, 4000 interactions each\n")
        .Append("dotnet run -c Release --project bench/Learning -- --scenario drift    # one scenario\n")
        .Append("dotnet run -c Release --project bench/Learning -- --sampling-seeds 32 # ours over 32 more sampling seeds\n")
        .Append("dotnet run -c Release --project bench/Learning -- --write-readme      # rewrite this section\n")
        .Append("```\n\n")
        .Append(Report.Method(options.Steps, lambda, options.SamplingSeeds)).Append("\n\n")
        .Append("The catalog of every scenario (true qualities, failure rates and latencies: `bench/Learning/Scenarios.cs`):\n\n")
        .Append(Report.Catalog(results[0].Scenario.Arms)).Append('\n')
        .Append(Invariant($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC (`date -u`) on {MachineLine()}, .NET {Environment.Version}.\n{header}.\n\n"))
        .Append(Report.Tables(results, s => Path.GetRelativePath(readmeDirectory, ChartPath(s.Name)).Replace('\\', '/')))
        .ToString();
    ReadmeSection.Write(readmePath, section);
    Console.WriteLine($"updated {Path.GetRelativePath(repositoryRoot, Path.GetFullPath(readmePath))}");
}

return 0;

string ChartPath(string scenario) => Path.Combine(resultsDirectory, $"regret-{scenario}.svg");

static async Task<SamplingSeedRun> RunOursAsync(World world, int samplingSeed)
{
    using var strategy = LearningServiceStrategy.Create(world.Scenario, samplingSeed);
    return new SamplingSeedRun(samplingSeed, await Simulation.RunAsync(world, strategy, CancellationToken.None));
}

// The repository is found from the build output, so the program writes to the same place from any directory.
static string RepositoryRoot()
{
    for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
    {
        if (File.Exists(Path.Combine(directory.FullName, "PersistentAgents.sln")))
        {
            return directory.FullName;
        }
    }

    return Directory.GetCurrentDirectory();
}

// The CPU model and core count, as /proc/cpuinfo gives them.
static string MachineLine()
{
    const string cpuInfo = "/proc/cpuinfo";
    if (!File.Exists(cpuInfo))
    {
        return Invariant($"{Environment.ProcessorCount} cores");
    }

    var lines = File.ReadAllLines(cpuInfo);
    var model = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
    var cores = lines.Count(l => l.StartsWith("processor", StringComparison.Ordinal));
    return Invariant($"{model} × {cores} cores (`/proc/cpuinfo`)");
}

static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
