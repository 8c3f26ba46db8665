// The gateway's overhead against Portkey's open-source gateway. A fake OpenAI-compatible upstream (this
// program with --upstream) answers a fixed completion after a fixed delay, or streams it in a fixed number of
// chunks; the same chat completion is sent straight to it, through our gateway (the embedded host, Release, its
// own process, POST /v1/chat/completions) and through Portkey (node, the version pinned in
// portkey/package-lock.json), one target at a time, sequentially and at fixed open-loop rates, once for whole
// replies and once streamed. The overhead is each gateway's latency (for streams: time to the first content
// chunk, and to [DONE]) minus the direct one. Usage: dotnet run -c Release --project bench/Gateway [-- --help]
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using PersistentAgents.Bench.Gateway;
using static PersistentAgents.Bench.BenchEnvironment;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

if (args is ["--upstream", var upstreamPortArg, "--delay", var delayArg, "--chunks", var chunksArg, "--chunk-gap", var gapArg])
{
    return await FakeUpstream.RunAsync(int.Parse(upstreamPortArg, CultureInfo.InvariantCulture), int.Parse(delayArg, CultureInfo.InvariantCulture),
        new StreamShape(int.Parse(chunksArg, CultureInfo.InvariantCulture), int.Parse(gapArg, CultureInfo.InvariantCulture)));
}

if (args.Contains("--help"))
{
    Console.WriteLine("""
        dotnet run -c Release --project bench/Gateway [-- options]
          --sequential N     requests one at a time per target (default 2000)
          --seconds S        length of each fixed-rate run (default 10)
          --rates A,B,...    open-loop rates in requests/s (default 200,500,1000,2000)
          --delays A,B,...   the fake upstream's delay in ms (to the whole reply, or to a stream's
                             first chunk), one full pass each (default 0,20)
          --targets LIST     any of direct,ours,portkey (default all three)
          --passes LIST      any of plain,streamed: whole replies, and/or "stream": true with
                             stream_options.include_usage, measuring the time to the first content
                             chunk (TTFT) and to [DONE] (default both)
          --chunks N         content chunks in each streamed reply (default 20)
          --chunk-gap MS     the fake upstream's gap between two content chunks (default 0)
          --keep             keep the work folder (server logs, generated catalogs, data)
        internal: --upstream PORT --delay MS --chunks N --chunk-gap MS runs the fake upstream
        """);
    return 0;
}

var sequentialCount = IntOption("--sequential", 2000);
var seconds = IntOption("--seconds", 10);
var rates = ListOption("--rates", "200,500,1000,2000").Select(int.Parse).ToArray();
var delays = ListOption("--delays", "0,20").Select(int.Parse).ToArray();
var targets = ListOption("--targets", "direct,ours,portkey").ToHashSet(StringComparer.Ordinal);
var passes = ListOption("--passes", "plain,streamed").ToHashSet(StringComparer.Ordinal);
var shape = new StreamShape(IntOption("--chunks", 20), IntOption("--chunk-gap", 0));
var keep = args.Contains("--keep");
foreach (var (option, given, known) in new[] { ("--targets", targets, new[] { "direct", "ours", "portkey" }), ("--passes", passes, ["plain", "streamed"]) })
{
    if (given.Count == 0 || given.Any(g => !known.Contains(g, StringComparer.Ordinal)))
    {
        await Console.Error.WriteLineAsync($"{option}: one or more of {string.Join(",", known)}, not '{string.Join(",", given)}'");
        return 2;
    }
}

if (shape.Chunks < 1 || shape.GapMs < 0)
{
    await Console.Error.WriteLineAsync($"--chunks must be at least 1 (given {shape.Chunks}) and --chunk-gap at least 0 (given {shape.GapMs})");
    return 2;
}

var root = RepositoryRoot();
var hostDll = BuiltHostDll(root);
var portkeyDir = Path.Combine(root, "bench", "Gateway", "portkey");
var benchDll = typeof(FakeUpstream).Assembly.Location;
var dotnet = DotnetExecutable();
var work = Path.Combine(Path.GetTempPath(), "pa-bench-gateway", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(work);
const string ApiKey = "sk-bench-not-a-real-key";
const string KeyVariable = "PA_BENCH_UPSTREAM_KEY";

if (!File.Exists(hostDll))
{
    await Console.Error.WriteLineAsync($"{hostDll} is missing: run with -c {BuildConfiguration} (the project reference builds it)");
    return 2;
}

if (targets.Contains("portkey"))
{
    await EnsurePortkeyAsync();
}

var portkeyDescription = targets.Contains("portkey")
    ? $"node {(await CaptureAsync("node", "--version")).Trim()}, @portkey-ai/gateway {await InstalledVersionAsync("@portkey-ai/gateway")} on @hono/node-server {await InstalledVersionAsync("@hono/node-server")}"
    : "Portkey not measured";
Progress($"{RuntimeInformation.FrameworkDescription}, {Environment.ProcessorCount} cores; {portkeyDescription}; work folder {work}");

var results = new List<(int Delay, RunResult Run)>();
var notes = new List<string>();
using var load = new LoadGenerator();
try
{
    foreach (var delay in delays)
    {
        var upstreamPort = FreePort();
        await using var upstream = ChildProcess.Start("fake upstream", dotnet,
            [
                benchDll, "--upstream", upstreamPort.ToString(CultureInfo.InvariantCulture), "--delay", delay.ToString(CultureInfo.InvariantCulture),
                "--chunks", shape.Chunks.ToString(CultureInfo.InvariantCulture), "--chunk-gap", shape.GapMs.ToString(CultureInfo.InvariantCulture),
            ],
            work, Path.Combine(work, $"upstream-{delay}ms.log"));
        (string, string)[] common = [("Authorization", $"Bearer {ApiKey}"), ("Cache-Control", "no-cache")];
        var direct = new Target("direct", new Uri($"http://127.0.0.1:{upstreamPort}/v1/chat/completions"), common);
        await upstream.WaitReadyAsync(async () => (await load.ProbeAsync(direct)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(60));

        if (targets.Contains("direct"))
        {
            await MeasurePassesAsync(delay, direct, upstream.CpuTime, () => 0, "");
        }

        if (targets.Contains("ours"))
        {
            var catalog = Path.Combine(work, $"catalog-{delay}ms.yaml");
            await File.WriteAllTextAsync(catalog, $"""
                # Generated by bench/Gateway: one OpenAI-compatible provider, the fake upstream on 127.0.0.1.
                simulated: never
                providers:
                  - name: openai
                    kind: openai
                    endpoint: http://127.0.0.1:{upstreamPort}/v1
                    apiKeySecret: {KeyVariable}
                    timeoutSeconds: 30
                    models:
                      - name: bench-model
                        inputPricePerMTok: 0.15
                        outputPricePerMTok: 0.60
                        contextWindow: 128000
                        quality: 0.8
                """);
            var (port, grpcPort) = (FreePort(), FreePort());
            await using var ours = ChildProcess.Start("our gateway", dotnet,
            [
                hostDll,
                "--urls", $"http://127.0.0.1:{port}",
                "--grpc-urls", $"http://127.0.0.1:{grpcPort}",
                "--data-dir", Path.Combine(work, $"data-{delay}ms"),
                "--catalog", catalog,
            ], work, Path.Combine(work, $"ours-{delay}ms.log"), new Dictionary<string, string> { [KeyVariable] = ApiKey });
            var target = new Target("ours", new Uri($"http://127.0.0.1:{port}/v1/chat/completions"), common);
            await ours.WaitReadyAsync(async () => (await load.ProbeAsync(target)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(120));
            var (_, body, headers) = await load.ProbeAsync(target);
            if (!body.Contains("\"usage\"", StringComparison.Ordinal) || !body.Contains(FakeUpstream.ReplyText, StringComparison.Ordinal)
                || !headers.Contains("x-pa-provider: openai", StringComparison.Ordinal) || !headers.Contains("x-pa-simulated: false", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"our gateway did not relay the fake upstream: {headers} {body}");
            }

            await MeasurePassesAsync(delay, target, ours.CpuTime, () => ours.OutputLines, " (default appsettings.json levels)");
        }

        if (targets.Contains("portkey"))
        {
            var port = FreePort();
            await using var portkey = ChildProcess.Start("Portkey", "node", ["server.mjs", $"--port={port}", "--headless"], portkeyDir,
                Path.Combine(work, $"portkey-{delay}ms.log"), new Dictionary<string, string> { ["NODE_ENV"] = "production" });
            var target = new Target("portkey", new Uri($"http://127.0.0.1:{port}/v1/chat/completions"),
            [
                .. common,
                ("x-portkey-provider", "openai"),
                ("x-portkey-custom-host", $"http://127.0.0.1:{upstreamPort}/v1"),
            ]);
            await portkey.WaitReadyAsync(async () => (await load.ProbeAsync(target)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(60));
            var (_, body, _) = await load.ProbeAsync(target);
            if (!body.Contains("\"usage\"", StringComparison.Ordinal) || !body.Contains(FakeUpstream.ReplyText, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"Portkey did not relay the fake upstream: {body}");
            }

            await MeasurePassesAsync(delay, target, portkey.CpuTime, () => portkey.OutputLines, "");
        }
    }
}
finally
{
    if (keep)
    {
        Progress($"logs and data kept in {work}");
    }
    else
    {
        try
        {
            Directory.Delete(work, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

Report();
return 0;

// The passes asked for, each after a warm-up of its own; the streamed one only when the target streams the fake
// upstream's reply back whole. Notes the lines the server logged during each pass's measured runs.
async Task MeasurePassesAsync(int delay, Target target, Func<TimeSpan> serverCpu, Func<long> outputLines, string logging)
{
    if (passes.Contains("plain"))
    {
        var lines = await MeasureAsync(delay, target, serverCpu, outputLines);
        notes.Add($"{target.Name} wrote {lines} log lines during the measured runs of whole replies at {delay} ms{logging}");
    }

    if (passes.Contains("streamed") && await RelaysStreamAsync(delay, target.AsStreamed()))
    {
        var lines = await MeasureAsync(delay, target.AsStreamed(), serverCpu, outputLines);
        notes.Add($"{target.Name} wrote {lines} log lines during the measured runs of streams at {delay} ms{logging}");
    }
}

// One streamed request: false (and a note) when the target refuses streams; an exception when it answers 200 but
// does not hand on the upstream's text, usage and [DONE].
async Task<bool> RelaysStreamAsync(int delay, Target target)
{
    var (status, headers, stream, text, body) = await load.ProbeStreamAsync(target);
    if (status != HttpStatusCode.OK)
    {
        notes.Add($"{target.Name} answered a streamed request at {delay} ms with HTTP {(int)status}: {body.ReplaceLineEndings(" ")}; its streams are not measured");
        return false;
    }

    if (stream is not { Error: null, Usage: true } || text != FakeUpstream.StreamedText(shape.Chunks)
        || !headers.Contains("text/event-stream", StringComparison.Ordinal)
        || (target.Name == "ours" && !headers.Contains("x-pa-provider: openai", StringComparison.Ordinal)))
    {
        throw new InvalidOperationException($"{target.Name} did not relay the fake upstream's stream: {stream}, text '{text}', headers {headers}");
    }

    notes.Add($"{target.Name} at {delay} ms: the {shape.Chunks} content chunks of a stream arrived as {stream.Value.ContentChunks}, with a usage chunk and [DONE]");
    return true;
}

// Returns the lines the server logged during the measured runs (after the warm-up).
async Task<long> MeasureAsync(int delay, Target target, Func<TimeSpan> serverCpu, Func<long> outputLines)
{
    // Warm-up, not recorded: JIT tiers, connection pools, V8's optimiser.
    Progress($"{Describe(target)}, upstream delay {delay} ms: warm-up");
    await load.SequentialAsync(target, Math.Min(500, sequentialCount), null);
    await load.OpenLoopAsync(target, 500, TimeSpan.FromSeconds(3), null);

    await Task.Delay(1000);
    var linesBefore = outputLines();
    Progress($"{Describe(target)}, upstream delay {delay} ms: {sequentialCount} sequential requests");
    Record(delay, await load.SequentialAsync(target, sequentialCount, serverCpu));
    foreach (var rate in rates)
    {
        await Task.Delay(1000);
        Progress($"{Describe(target)}, upstream delay {delay} ms: {rate} rps for {seconds} s (after 1 s unrecorded at that rate)");
        await load.OpenLoopAsync(target, rate, TimeSpan.FromSeconds(1), null);
        Record(delay, await load.OpenLoopAsync(target, rate, TimeSpan.FromSeconds(seconds), serverCpu));
    }

    return outputLines() - linesBefore;
}

void Record(int delay, RunResult run)
{
    results.Add((delay, run));
    var firstToken = run.Streamed ? $"TTFT p50 {run.FirstTokenP50:0.000} ms, p99 {run.FirstTokenP99:0.000} ms, end " : "";
    Progress($"  {run.Load}: ok {run.LatenciesMs.Length}/{run.Sent}, errors {run.ErrorCount} {Errors(run)}, {firstToken}p50 {run.P50:0.000} ms, p99 {run.P99:0.000} ms, achieved {run.AchievedRps:0} rps");
}

// A stream is held when its end comes within 100 ms of what the upstream alone takes to send it.
bool Held(int delay, RunResult run) =>
    run.ErrorCount == 0 && run.AchievedRps >= 0.95 * run.OfferedRps && run.P99 <= delay + (run.Streamed ? (shape.Chunks - 1) * shape.GapMs : 0) + 100;

void Report()
{
    var output = new StringBuilder();
    output.AppendLine(CultureInfo.InvariantCulture, $"gateway overhead: {sequentialCount} sequential requests, then open-loop rates {string.Join(", ", rates)} rps for {seconds} s each; one target at a time");
    output.AppendLine(CultureInfo.InvariantCulture, $"{RuntimeInformation.FrameworkDescription}; {portkeyDescription}; {Environment.ProcessorCount} cores shared by the load generator, the fake upstream and the gateway under test");
    if (passes.Contains("streamed"))
    {
        output.AppendLine(CultureInfo.InvariantCulture, $"streams: {shape.Chunks} content chunks, the first after the upstream delay, then {shape.GapMs} ms apart; usage chunk; [DONE]");
    }

    foreach (var delay in delays)
    {
        if (Runs(delay, streamed: false).Any())
        {
            WholeReplyTables(output, delay);
        }

        if (Runs(delay, streamed: true).Any())
        {
            StreamTables(output, delay);
        }

        if (Runs(delay, streamed: false).Any(r => r.Target != "direct") && Runs(delay, streamed: true).Any(r => r.Target != "direct"))
        {
            SideBySide(output, delay);
        }
    }

    foreach (var (error, body) in load.ErrorSamples.OrderBy(e => e.Key, StringComparer.Ordinal))
    {
        notes.Add($"first {error} answer: {body.ReplaceLineEndings(" ")}");
    }

    output.AppendLine();
    foreach (var note in notes)
    {
        output.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
    }

    Console.Write(output.ToString());
}

void WholeReplyTables(StringBuilder output, int delay)
{
    output.AppendLine();
    output.AppendLine(CultureInfo.InvariantCulture, $"Upstream delay {delay} ms, whole replies: latency per target (ms, from the scheduled send time under open-loop load)");
    output.AppendLine();
    output.AppendLine("| load | target | ok / sent | errors | achieved rps | p50 | p99 | added p50 | added p99 | server CPU µs/request | generator lag p99 | held |");
    output.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    foreach (var run in Runs(delay, streamed: false))
    {
        var baseline = Baseline(delay, run);
        output.AppendLine(CultureInfo.InvariantCulture,
            $"| {run.Load} | {run.Target} | {run.LatenciesMs.Length} / {run.Sent} | {ErrorCell(run)} | {run.AchievedRps:0} | {run.P50:0.000} | {run.P99:0.000} | " +
            $"{Added(run.P50, baseline?.P50)} | {Added(run.P99, baseline?.P99)} | {ServerColumns(delay, run)} |");
    }

    output.AppendLine();
    output.AppendLine(CultureInfo.InvariantCulture, $"Upstream delay {delay} ms, whole replies: added latency, ours against Portkey (ms; ratio < 1 means ours adds less)");
    output.AppendLine();
    output.AppendLine("| load | ours added p50 | Portkey added p50 | ours / Portkey | ours added p99 | Portkey added p99 | ours / Portkey | errors ours / Portkey |");
    output.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var (ours, portkey, direct) in Compared(delay, streamed: false))
    {
        output.AppendLine(CultureInfo.InvariantCulture,
            $"| {ours.Load} | {Versus(ours.P50, portkey?.P50, direct.P50)} | {Versus(ours.P99, portkey?.P99, direct.P99)} | {ours.ErrorCount} / {portkey?.ErrorCount.ToString(CultureInfo.InvariantCulture) ?? "-"} |");
    }

    HeldLine(output, delay, streamed: false);
}

void StreamTables(StringBuilder output, int delay)
{
    output.AppendLine();
    output.AppendLine(CultureInfo.InvariantCulture,
        $"Upstream delay {delay} ms, streamed: time to the first content chunk (TTFT) and to [DONE] per target (ms, from the scheduled send time under open-loop load)");
    output.AppendLine();
    output.AppendLine("| load | target | ok / sent | errors | achieved rps | TTFT p50 | TTFT p99 | added TTFT p50 | added TTFT p99 | end p50 | end p99 | added end p50 | added end p99 | server CPU µs/request | generator lag p99 | held |");
    output.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    foreach (var run in Runs(delay, streamed: true))
    {
        var baseline = Baseline(delay, run);
        output.AppendLine(CultureInfo.InvariantCulture,
            $"| {run.Load} | {run.Target} | {run.LatenciesMs.Length} / {run.Sent} | {ErrorCell(run)} | {run.AchievedRps:0} | {run.FirstTokenP50:0.000} | {run.FirstTokenP99:0.000} | " +
            $"{Added(run.FirstTokenP50, baseline?.FirstTokenP50)} | {Added(run.FirstTokenP99, baseline?.FirstTokenP99)} | {run.P50:0.000} | {run.P99:0.000} | " +
            $"{Added(run.P50, baseline?.P50)} | {Added(run.P99, baseline?.P99)} | {ServerColumns(delay, run)} |");
    }

    output.AppendLine();
    output.AppendLine(CultureInfo.InvariantCulture, $"Upstream delay {delay} ms, streamed: added time, ours against Portkey (ms; ratio < 1 means ours adds less)");
    output.AppendLine();
    output.AppendLine("| load | ours added TTFT p50 | Portkey added TTFT p50 | ours / Portkey | ours added TTFT p99 | Portkey added TTFT p99 | ours / Portkey | ours added end p99 | Portkey added end p99 | ours / Portkey | errors ours / Portkey |");
    output.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var (ours, portkey, direct) in Compared(delay, streamed: true))
    {
        output.AppendLine(CultureInfo.InvariantCulture,
            $"| {ours.Load} | {Versus(ours.FirstTokenP50, portkey?.FirstTokenP50, direct.FirstTokenP50)} | {Versus(ours.FirstTokenP99, portkey?.FirstTokenP99, direct.FirstTokenP99)} | " +
            $"{Versus(ours.P99, portkey?.P99, direct.P99)} | {ours.ErrorCount} / {portkey?.ErrorCount.ToString(CultureInfo.InvariantCulture) ?? "-"} |");
    }

    HeldLine(output, delay, streamed: true);
}

// The same gateway's added latency for whole replies and for streams, one row per gateway and load.
void SideBySide(StringBuilder output, int delay)
{
    output.AppendLine();
    output.AppendLine(CultureInfo.InvariantCulture, $"Upstream delay {delay} ms: added latency against direct, whole replies beside streams (ms)");
    output.AppendLine();
    output.AppendLine("| load | target | whole: added p50 | whole: added p99 | streamed: added TTFT p50 | streamed: added TTFT p99 | streamed: added end p50 | streamed: added end p99 |");
    output.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
    foreach (var whole in Runs(delay, streamed: false).Where(r => r.Target != "direct"))
    {
        var wholeBase = Baseline(delay, whole);
        var stream = Find(delay, streamed: true, whole.Target, whole.Load);
        var streamBase = stream is null ? null : Baseline(delay, stream);
        output.AppendLine(CultureInfo.InvariantCulture,
            $"| {whole.Load} | {whole.Target} | {Added(whole.P50, wholeBase?.P50)} | {Added(whole.P99, wholeBase?.P99)} | " +
            $"{Added(stream?.FirstTokenP50, streamBase?.FirstTokenP50)} | {Added(stream?.FirstTokenP99, streamBase?.FirstTokenP99)} | " +
            $"{Added(stream?.P50, streamBase?.P50)} | {Added(stream?.P99, streamBase?.P99)} |");
    }
}

void HeldLine(StringBuilder output, int delay, bool streamed)
{
    var measured = Runs(delay, streamed).Select(r => r.Target).Distinct(StringComparer.Ordinal).ToArray();
    var held = measured.ToDictionary(t => t, t => Runs(delay, streamed)
        .Where(r => r.Target == t && r.OfferedRps > 0 && Held(delay, r))
        .Select(r => r.OfferedRps).DefaultIfEmpty(0).Max());
    var heldRates = string.Join(", ", held.Select(h => $"{h.Key} {h.Value} rps"));
    var heldRatio = held.TryGetValue("ours", out var ho) && held.TryGetValue("portkey", out var hp) ? $"; ours / Portkey {Ratio(ho, hp)}" : "";
    var bound = streamed && shape.GapMs > 0 ? $"delay + {(shape.Chunks - 1) * shape.GapMs} ms of chunk gaps + 100 ms" : "delay + 100 ms";
    output.AppendLine();
    output.AppendLine(CultureInfo.InvariantCulture,
        $"Highest rate held{(streamed ? " streamed" : "")} (no error, ≥ 95 % of the offered rate achieved, p99{(streamed ? " to [DONE]" : "")} ≤ {bound}) at {delay} ms: {heldRates}{heldRatio}");
}

string ServerColumns(int delay, RunResult run) =>
    $"{run.ServerCpuUsPerRequest:0} | {(run.OfferedRps == 0 ? "" : run.GeneratorLagP99Ms.ToString("0.000", CultureInfo.InvariantCulture))} | {(run.OfferedRps == 0 ? "" : Held(delay, run) ? "yes" : "no")}";

IEnumerable<RunResult> Runs(int delay, bool streamed) => results
    .Where(r => r.Delay == delay && r.Run.Streamed == streamed).Select(r => r.Run)
    .OrderBy(r => r.OfferedRps).ThenBy(r => TargetOrder(r.Target));

// Each of our runs with Portkey's and direct's at the same load (Portkey's may be missing; direct's may not).
IEnumerable<(RunResult Ours, RunResult? Portkey, RunResult Direct)> Compared(int delay, bool streamed) =>
    from ours in Runs(delay, streamed)
    where ours.Target == "ours"
    let direct = Find(delay, streamed, "direct", ours.Load)
    where direct is not null
    select (ours, Find(delay, streamed, "portkey", ours.Load), direct);

RunResult? Baseline(int delay, RunResult run) => run.Target == "direct" ? null : Find(delay, run.Streamed, "direct", run.Load);

RunResult? Find(int delay, bool streamed, string target, string loadName) =>
    results.Where(r => r.Delay == delay && r.Run.Streamed == streamed && r.Run.Target == target && r.Run.Load == loadName).Select(r => r.Run).FirstOrDefault();

// "ours added | Portkey added | ours / Portkey" for one percentile.
static string Versus(double ours, double? portkey, double direct)
{
    var o = ours - direct;
    return portkey is { } value
        ? string.Create(CultureInfo.InvariantCulture, $"{o:0.000} | {value - direct:0.000} | {Ratio(o, value - direct)}")
        : string.Create(CultureInfo.InvariantCulture, $"{o:0.000} | - | -");
}

static string Added(double? value, double? baseline) =>
    value is { } v && baseline is { } b ? (v - b).ToString("0.000", CultureInfo.InvariantCulture) : "";

static string ErrorCell(RunResult run) =>
    run.ErrorCount.ToString(CultureInfo.InvariantCulture) + (run.ErrorCount > 0 ? $" ({Errors(run)})" : "");

static string Describe(Target target) => target.Streamed ? $"{target.Name} streamed" : target.Name;

static int TargetOrder(string target) => target switch { "direct" => 0, "ours" => 1, _ => 2 };

static string Ratio(double ours, double theirs) =>
    double.IsNaN(ours) || double.IsNaN(theirs) || theirs <= 0 || ours < 0 ? "n/a" : (ours / theirs).ToString("0.00", CultureInfo.InvariantCulture) + "×";

static string Errors(RunResult run) => string.Join(", ", run.Errors.OrderByDescending(e => e.Value).Select(e => $"{e.Key}: {e.Value}"));

static void Progress(string line) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {line}");

int IntOption(string name, int fallback) =>
    args.SkipWhile(a => a != name).Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(fallback);

string[] ListOption(string name, string fallback) =>
    (args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

// npm ci when node_modules does not hold the versions package-lock.json pins (Portkey, and the @hono/node-server
// that package.json overrides), so a folder installed before a pin changed is brought to it.
async Task EnsurePortkeyAsync()
{
    if (await PortkeyInstalledAsPinnedAsync())
    {
        return;
    }

    Progress("installing the pinned Portkey gateway: npm ci in bench/Gateway/portkey");
    await using var npm = ChildProcess.Start("npm ci", "npm", ["ci", "--no-audit", "--no-fund"], portkeyDir, Path.Combine(work, "npm-ci.log"));
    var deadline = Stopwatch.GetTimestamp() + (300 * Stopwatch.Frequency);
    while (!npm.HasExited && Stopwatch.GetTimestamp() < deadline)
    {
        await Task.Delay(500);
    }

    if (!await PortkeyInstalledAsPinnedAsync())
    {
        throw new InvalidOperationException($"npm ci did not install the pinned @portkey-ai/gateway and @hono/node-server; see {npm.LogPath}");
    }
}

async Task<bool> PortkeyInstalledAsPinnedAsync()
{
    var locked = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(portkeyDir, "package-lock.json")))!["packages"]!;
    foreach (var package in new[] { "@portkey-ai/gateway", "@hono/node-server" })
    {
        if (await InstalledVersionAsync(package) != locked[$"node_modules/{package}"]!["version"]!.GetValue<string>())
        {
            return false;
        }
    }

    return File.Exists(Path.Combine(portkeyDir, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js"));
}

// The version of a package in bench/Gateway/portkey/node_modules, or null when it is not there.
async Task<string?> InstalledVersionAsync(string package)
{
    var manifest = Path.Combine(portkeyDir, "node_modules", package, "package.json");
    return File.Exists(manifest) ? JsonNode.Parse(await File.ReadAllTextAsync(manifest))!["version"]!.GetValue<string>() : null;
}

static async Task<string> CaptureAsync(string fileName, string argument)
{
    using var process = Process.Start(new ProcessStartInfo(fileName, argument) { RedirectStandardOutput = true, UseShellExecute = false })!;
    var output = await process.StandardOutput.ReadToEndAsync();
    await process.WaitForExitAsync();
    return output;
}
