using System.Diagnostics;
using System.Globalization;
using PersistentAgents.Bench.Gateway;

namespace PersistentAgents.Bench.Load;

/// <summary>
/// The host's resident memory (VmRSS from /proc/PID/status) at the start and end of the measured window and its
/// highest sample in between, and the CPU time the host, the load generator and the machine spent over it.
/// </summary>
public sealed class HostSamples(int hostPid)
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    public long RssStartKiB { get; private set; }

    public long RssEndKiB { get; private set; }

    public long RssPeakKiB { get; private set; }

    public double HostCpuSeconds { get; private set; }

    public double ClientCpuSeconds { get; private set; }

    public double IdleShare { get; private set; }

    public double IowaitShare { get; private set; }

    /// <summary>Samples from now until <paramref name="window"/> has passed.</summary>
    public async Task SampleAsync(ChildProcess host, TimeSpan window)
    {
        var hostCpuStart = host.CpuTime();
        var clientCpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        var (totalStart, idleStart, iowaitStart) = MachineTicks();
        RssStartKiB = RssPeakKiB = RssKiB();
        var end = Stopwatch.GetTimestamp() + (long)(window.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < end)
        {
            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), end);
            await Task.Delay(remaining < Interval ? remaining : Interval);
            RssPeakKiB = Math.Max(RssPeakKiB, RssKiB());
        }

        RssEndKiB = RssKiB();
        RssPeakKiB = Math.Max(RssPeakKiB, RssEndKiB);
        HostCpuSeconds = (host.CpuTime() - hostCpuStart).TotalSeconds;
        ClientCpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - clientCpuStart).TotalSeconds;
        var (total, idle, iowait) = MachineTicks();
        IdleShare = (double)(idle - idleStart) / (total - totalStart);
        IowaitShare = (double)(iowait - iowaitStart) / (total - totalStart);
    }

    private long RssKiB()
    {
        var line = File.ReadLines($"/proc/{hostPid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    /// <summary>All, idle and iowait clock ticks of every core since boot, from the first line of /proc/stat.</summary>
    private static (long Total, long Idle, long Iowait) MachineTicks()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..]
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
        return (fields.Take(8).Sum(), fields[3], fields[4]);
    }
}
