using Microsoft.Playwright;
using Xunit.Abstractions;

namespace PersistentAgents.EndToEnd.Tests;

/// <summary>
/// A fact that needs Debian's chromium (installed by .ci/run). xunit 2 has no skip decided inside a
/// test, so the attribute skips it, saying why, on a machine without the browser.
/// </summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        if (!File.Exists(ChromiumPath))
        {
            Skip = $"{ChromiumPath} is missing: install Debian's chromium (apt-get install -y chromium, as .ci/run does) to run the dashboard's browser test";
        }
    }
}

public sealed class DashboardTests(ITestOutputHelper output)
{
    private const string Agent = "dashboard-demo";
    private const string TaskType = "email_routing";

    [ChromiumFact]
    public async Task Dashboard_shows_an_agent_after_its_completes_with_a_learning_curve_that_has_data()
    {
        await using var host = await TestHost.StartAsync(TestHost.NewDataDir(), TestCatalogs.Simulated());
        for (var i = 0; i < 15; i++)
        {
            var (status, reply) = await host.CompleteAsync(Agent, new { prompt = $"Route email number {i} to the right team", taskType = TaskType });
            Assert.True(status == 200, $"complete {i} answered {status}: {reply}");
        }

        using var playwright = await Playwright.CreateAsync();
        // Playwright's own browser download is never used: the system chromium, with its calls home
        // switched off, since this machine's network is closed.
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumFactAttribute.ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await page.GotoAsync(new Uri(host.Rest.BaseAddress!, "/dashboard").ToString());

        var agentRow = page.Locator($"#agents tbody tr[data-agent='{Agent}']");
        await agentRow.WaitForAsync(new LocatorWaitForOptions { Timeout = 15_000 });
        Assert.Contains("15", await agentRow.InnerTextAsync(), StringComparison.Ordinal);
        await agentRow.ClickAsync();

        // Each arm's score after each of the 15 decisions: the chart's series, as uPlot holds them.
        await page.WaitForFunctionAsync(
            "taskType => (window.dashboardState.charts[taskType]?.data[0].length ?? 0) >= 15",
            TaskType, new PageWaitForFunctionOptions { Timeout = 15_000 });
        var scorePoints = await page.EvaluateAsync<int>(
            "taskType => window.dashboardState.charts[taskType].data.slice(1).flat().filter(v => v !== null).length", TaskType);
        Assert.True(scorePoints > 0, "the learning chart has no data points");
        await Assertions.Expect(page.Locator("#providers tbody tr")).ToHaveCountAsync(3);

        var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", "dashboard.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        output.WriteLine($"dashboard screenshot: {screenshot}");
    }
}
