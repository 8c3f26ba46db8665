using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using static PersistentAgents.EndToEnd.Tests.JsonAssert;

namespace PersistentAgents.EndToEnd.Tests.Node;

/// <summary>
/// A fact that needs Node.js and npm (installed by .ci/run). xunit 2 has no skip decided inside a test, so the
/// attribute skips it, saying why, on a machine without them.
/// </summary>
public sealed class NodeFactAttribute : FactAttribute
{
    private static readonly string[] Tools = ["node", "npm"];

    public NodeFactAttribute()
    {
        var missing = Tools.Where(tool => NodeOpenAiClient.FindOnPath(tool) is null).ToList();
        if (missing.Count > 0)
        {
            Skip = $"{string.Join(" and ", missing)} not found on PATH: install Node.js 20 or later with npm (apt-get install -y nodejs npm, as .ci/run does) to run the OpenAI Node.js client against the gateway";
        }
    }
}

/// <summary>
/// The gateway's OpenAI-compatible API driven by a client from another ecosystem: the official OpenAI package for
/// Node.js, from npm, run with node. It prints what it saw as JSON; these tests assert on that.
/// </summary>
public sealed class NodeOpenAiClientTests
{
    [NodeFact]
    public async Task The_openai_node_client_gets_a_chat_completion_with_usage_and_the_gateway_headers()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var seen = await NodeOpenAiClient.RunAsync(host, "sim-best/best", "plain", "A customer disputes invoice 4471");

        Assert.StartsWith("chatcmpl-", seen["id"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("chat.completion", seen["object"]!.GetValue<string>());
        Assert.Equal("sim-best/best", seen["model"]!.GetValue<string>());
        Assert.Equal("assistant", seen["role"]!.GetValue<string>());
        var content = seen["content"]!.GetValue<string>();
        Assert.Contains("[simulated sim-best/best]", content, StringComparison.Ordinal);
        Assert.Contains("invoice 4471", content, StringComparison.Ordinal);
        Assert.Equal("stop", seen["finishReason"]!.GetValue<string>());
        var usage = seen["usage"]!;
        Assert.True(WholeNumber(usage["prompt_tokens"]) > 0);
        Assert.True(WholeNumber(usage["completion_tokens"]) > 0);
        Assert.Equal(WholeNumber(usage["prompt_tokens"]) + WholeNumber(usage["completion_tokens"]), WholeNumber(usage["total_tokens"]));
        Assert.Equal("sim-best", seen["headers"]!["x-pa-provider"]!.GetValue<string>());
        Assert.Equal("true", seen["headers"]!["x-pa-simulated"]!.GetValue<string>());
        Assert.True(Number(JsonNode.Parse(seen["headers"]!["x-pa-cost-usd"]!.GetValue<string>())) > 0);
    }

    [NodeFact]
    public async Task The_openai_node_client_streams_a_chat_completion_with_usage_in_a_last_chunk()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());

        var seen = await NodeOpenAiClient.RunAsync(host, "sim-best/best", "streamed", "A customer disputes invoice 4472");

        Assert.True(WholeNumber(seen["chunks"]) > 3, $"{seen["chunks"]} chunks");
        Assert.Equal(["chat.completion.chunk"], seen["objects"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.StartsWith("chatcmpl-", Assert.Single(seen["ids"]!.AsArray())!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("sim-best/best", seen["model"]!.GetValue<string>());
        Assert.Equal("assistant", seen["role"]!.GetValue<string>());
        var content = seen["content"]!.GetValue<string>();
        Assert.Contains("[simulated sim-best/best]", content, StringComparison.Ordinal);
        Assert.Contains("invoice 4472", content, StringComparison.Ordinal);
        Assert.Equal(["stop"], seen["finishReasons"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.Equal(0, WholeNumber(seen["lastChunkChoices"]));
        var usage = seen["usage"]!;
        Assert.True(WholeNumber(usage["prompt_tokens"]) > 0);
        Assert.True(WholeNumber(usage["completion_tokens"]) > 0);
        Assert.Equal(WholeNumber(usage["prompt_tokens"]) + WholeNumber(usage["completion_tokens"]), WholeNumber(usage["total_tokens"]));
        Assert.True(Number(usage["x_pa_cost_usd"]) > 0);
        Assert.Equal("sim-best", seen["headers"]!["x-pa-provider"]!.GetValue<string>());
    }
}

/// <summary>
/// Runs <c>openai-client.mjs</c> with node over the npm package <c>openai</c> pinned by this folder's
/// package-lock.json. The package is installed once per machine into a cache folder outside the repository, named
/// after the lock file's hash: <c>npm ci --offline</c> first (from npm's own cache), then <c>npm ci</c>.
/// </summary>
public static class NodeOpenAiClient
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);
    private static readonly Lazy<Task<string>> s_installed = new(InstallAsync);

    private static string SourceFolder => Path.Combine(RepositoryRoot.Find(), "tests", "EndToEnd.Tests", "Node");

    /// <summary>Runs the script in <paramref name="mode"/> (plain or streamed) against the host and returns what it printed.</summary>
    public static async Task<JsonObject> RunAsync(TestHost host, string model, string mode, string prompt)
    {
        var modules = await s_installed.Value;
        var baseUrl = new Uri(host.Rest.BaseAddress!, "v1").ToString();
        var (output, errors) = await RunProcessAsync(
            "node", [Path.Combine(SourceFolder, "openai-client.mjs"), modules, baseUrl, model, mode, prompt], SourceFolder, RunTimeout);
        return JsonNode.Parse(output)?.AsObject() ?? throw new InvalidOperationException($"openai-client.mjs printed nothing:\n{errors}");
    }

    public static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, tool))
            .FirstOrDefault(File.Exists);

    private static async Task<string> InstallAsync()
    {
        var lockFile = Path.Combine(SourceFolder, "package-lock.json");
        var hash = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(lockFile)))[..16];
        var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        var folder = Path.Combine(cache, "persistent-agents", "node-openai-client", hash);
        if (File.Exists(Path.Combine(folder, "node_modules", "openai", "package.json")))
        {
            return folder;
        }

        // Installed beside and moved into place, so that a run interrupted half-way, or another run installing
        // at the same time, never leaves a folder that looks installed and is not.
        var staging = $"{folder}.installing-{Guid.NewGuid():N}";
        Directory.CreateDirectory(staging);
        try
        {
            File.Copy(Path.Combine(SourceFolder, "package.json"), Path.Combine(staging, "package.json"));
            File.Copy(lockFile, Path.Combine(staging, "package-lock.json"));
            var install = TimeSpan.FromMinutes(3);
            try
            {
                await RunProcessAsync("npm", ["ci", "--offline", "--no-audit", "--no-fund"], staging, install);
            }
            catch (InvalidOperationException)
            {
                // Not all of it in npm's cache yet: from the registry.
                await RunProcessAsync("npm", ["ci", "--no-audit", "--no-fund"], staging, install);
            }

            try
            {
                Directory.Move(staging, folder);
            }
            catch (IOException) when (Directory.Exists(folder))
            {
                // Another run installed it first.
            }
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }

        return folder;
    }

    private static async Task<(string Output, string Errors)> RunProcessAsync(string file, string[] arguments, string folder, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"'{file} {string.Join(' ', arguments)}' did not end within {timeout.TotalSeconds} s:\n{await output}\n{await errors}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{file} {string.Join(' ', arguments)}' exited with {process.ExitCode}:\n{await output}\n{await errors}");
        }

        return (await output, await errors);
    }
}
