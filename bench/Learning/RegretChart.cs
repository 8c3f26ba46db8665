using System.Globalization;
using System.Security;
using System.Text;

namespace PersistentAgents.Bench.Learning;

/// <summary>Cumulative regret against the step, one line per strategy, as a standalone SVG.</summary>
internal static class RegretChart
{
    private const int Width = 900;
    private const int Height = 520;
    private const int Left = 80;
    private const int Right = 24;
    private const int Top = 48;
    private const int Bottom = 56;
    private const int PlotWidth = Width - Left - Right;
    private const int PlotHeight = Height - Top - Bottom;

    /// <summary>About this many points per line: enough for a smooth curve, few enough for a small file.</summary>
    private const int PointsPerLine = 500;

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private static readonly Dictionary<string, (string Colour, string Dash, double StrokeWidth)> Styles = new(StringComparer.Ordinal)
    {
        [ScenarioResult.SeedRule] = ("#d62728", string.Empty, 2),
        ["round-robin"] = ("#9467bd", string.Empty, 1.5),
        ["always-cheapest"] = ("#8c564b", string.Empty, 1.5),
        ["always-best-quality"] = ("#ff7f0e", "6 3", 1.5),
        [ScenarioResult.Oracle] = ("#7f7f7f", "2 3", 1.5),
        [ScenarioResult.Ours] = ("#1f77b4", string.Empty, 3),
    };

    public static string Svg(ScenarioResult result)
    {
        var steps = result.World.Steps.Count;
        var yTicks = NiceTicks(result.Runs.Max(r => r.Regret));
        var xTicks = NiceTicks(steps);
        var yMax = yTicks[^1];
        var xMax = (double)steps;
        double X(double step) => Left + (PlotWidth * step / xMax);
        double Y(double regret) => Top + PlotHeight - (PlotHeight * regret / yMax);

        var svg = new StringBuilder();
        Append(svg, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{Width}" height="{Height}" viewBox="0 0 {Width} {Height}" font-family="Helvetica, Arial, sans-serif" font-size="12">""");
        Append(svg, $"""<rect width="{Width}" height="{Height}" fill="white"/>""");
        Append(svg, $"""<text x="{Width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{Escape(Format($"Cumulative regret: {result.Scenario.Name}"))}</text>""");
        Append(svg, $"""<text x="{Width / 2}" y="40" text-anchor="middle" fill="#555">{Escape(Format($"λ = {result.World.Lambda} (balanced), {steps} interactions, seed {result.Scenario.Seed}"))}</text>""");

        foreach (var tick in yTicks)
        {
            var y = Y(tick);
            Append(svg, $"""<line x1="{Left}" y1="{y:F1}" x2="{Left + PlotWidth}" y2="{y:F1}" stroke="#e5e5e5"/>""");
            Append(svg, $"""<text x="{Left - 8}" y="{y + 4:F1}" text-anchor="end">{TickLabel(tick)}</text>""");
        }

        foreach (var tick in xTicks)
        {
            var x = X(tick);
            Append(svg, $"""<line x1="{x:F1}" y1="{Top + PlotHeight}" x2="{x:F1}" y2="{Top + PlotHeight + 5}" stroke="#333"/>""");
            Append(svg, $"""<text x="{x:F1}" y="{Top + PlotHeight + 20}" text-anchor="middle">{TickLabel(tick)}</text>""");
        }

        Append(svg, $"""<line x1="{Left}" y1="{Top}" x2="{Left}" y2="{Top + PlotHeight}" stroke="#333"/>""");
        Append(svg, $"""<line x1="{Left}" y1="{Top + PlotHeight}" x2="{Left + PlotWidth}" y2="{Top + PlotHeight}" stroke="#333"/>""");
        Append(svg, $"""<text x="{Left + (PlotWidth / 2)}" y="{Height - 12}" text-anchor="middle">interaction</text>""");
        Append(svg, $"""<text transform="translate(20 {Top + (PlotHeight / 2)}) rotate(-90)" text-anchor="middle">cumulative regret (utility)</text>""");

        foreach (var change in result.Scenario.ChangePoints)
        {
            var x = X(change.Step);
            Append(svg, $"""<line x1="{x:F1}" y1="{Top}" x2="{x:F1}" y2="{Top + PlotHeight}" stroke="#999" stroke-dasharray="4 4"/>""");
            Append(svg, $"""<text x="{x + 4:F1}" y="{Top + 14}" fill="#555">{Escape(change.Name)}</text>""");
        }

        var stride = Math.Max(1, steps / PointsPerLine);
        foreach (var run in result.Runs)
        {
            var (colour, dash, strokeWidth) = Styles[run.Strategy];
            var points = Enumerable.Range(0, steps)
                .Where(i => i % stride == 0 || i == steps - 1)
                .Select(i => Format($"{X(i + 1):F1},{Y(run.CumulativeRegret[i]):F1}"));
            var dashAttribute = dash.Length == 0 ? string.Empty : $" stroke-dasharray=\"{dash}\"";
            Append(svg, $"""<polyline fill="none" stroke="{colour}" stroke-width="{strokeWidth}"{dashAttribute} stroke-linejoin="round" points="{Left},{Top + PlotHeight} {string.Join(' ', points)}"/>""");
        }

        // The legend sits in the top-left corner, where every curve starts at zero; its backing keeps it legible
        // should a curve climb steeply early on.
        var legendY = Top + 30;
        Append(svg, $"""<rect x="{Left + 8}" y="{legendY - 16}" width="220" height="{(18 * result.Runs.Count) + 8}" fill="white" fill-opacity="0.85" stroke="#ccc"/>""");
        foreach (var run in result.Runs)
        {
            var (colour, dash, strokeWidth) = Styles[run.Strategy];
            var dashAttribute = dash.Length == 0 ? string.Empty : $" stroke-dasharray=\"{dash}\"";
            Append(svg, $"""<line x1="{Left + 16}" y1="{legendY - 4}" x2="{Left + 44}" y2="{legendY - 4}" stroke="{colour}" stroke-width="{strokeWidth}"{dashAttribute}/>""");
            Append(svg, $"""<text x="{Left + 52}" y="{legendY}">{Escape(Format($"{run.Strategy} ({run.Regret:F1})"))}</text>""");
            legendY += 18;
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>Ticks at 1, 2 or 5 × 10ⁿ from 0 to at least <paramref name="max"/>, about five of them.</summary>
    private static double[] NiceTicks(double max)
    {
        if (max <= 0)
        {
            return [0, 1];
        }

        var rough = max / 5;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var spacing = new[] { 1.0, 2, 5, 10 }.Select(m => m * magnitude).First(s => s >= rough);
        var count = (int)Math.Ceiling((max / spacing) - 1e-9);
        return [.. Enumerable.Range(0, count + 1).Select(i => i * spacing)];
    }

    private static string TickLabel(double value) => value.ToString(value % 1 == 0 ? "N0" : "0.##", Invariant);

    private static void Append(StringBuilder svg, FormattableString element) => svg.Append(element.ToString(Invariant)).Append('\n');

    private static string Format(FormattableString text) => text.ToString(Invariant);

    private static string Escape(string text) => SecurityElement.Escape(text);
}
