using Microsoft.Extensions.Options;

namespace PersistentAgents.Gateway;

public sealed class BudgetOptions
{
    /// <summary>Daily budget in USD of every agent without one of its own; 0 means none.</summary>
    public double DefaultDailyUsd { get; set; }

    /// <summary>Daily budgets in USD by agent name.</summary>
    public Dictionary<string, double> DailyUsdByAgent { get; set; } = [];

    /// <summary>Output tokens assumed for a call when reserving its cost before it is made.</summary>
    public int ReservedOutputTokens { get; set; } = 1_024;
}

/// <summary>What an agent has spent on one UTC day: the port behind the ledger.</summary>
public interface ISpendStore
{
    Task<double> SpentOnAsync(string tenant, string agent, DateOnly day, CancellationToken cancellationToken);

    Task AddAsync(string tenant, string agent, DateOnly day, double usd, CancellationToken cancellationToken);
}

/// <summary>A call's cost held against the budget until it is known.</summary>
public sealed record SpendReservation(string Tenant, string Agent, DateOnly Day, double Usd);

/// <summary>
/// Per-agent daily budgets, enforced before every provider call: the call's estimated cost is reserved
/// first and refused when spend plus reservations would pass the budget, so concurrent calls through one
/// ledger cannot overspend it by more than one call's misestimate; the actual cost replaces the reservation
/// after.
/// <para>
/// With several gateway replicas each has its own ledger over the shared store. A replica reads the store's
/// spend for an agent's day once, at its first reservation for it, and from then on counts its own calls
/// only: other replicas' spend settled after that read is not seen until the next day or a restart. So each
/// replica holds the agent to the budget on its own, and N replicas together can spend up to N times the
/// daily budget (less what was stored before each one's first read); a replica that starts, or first serves
/// the agent, after the budget is spent refuses at once. Reading the store on every reservation would
/// narrow this to the calls in flight at once, at the price of a store round trip per call.
/// </para>
/// </summary>
public sealed class SpendLedger(ISpendStore store, IOptions<BudgetOptions> options, TimeProvider timeProvider)
{
    private readonly BudgetOptions _options = options.Value;

    // The arithmetic of reservations, under the lock and with no I/O: a day's stored spend is loaded before.
    private readonly Dictionary<(string Tenant, string Agent, DateOnly Day), (double Spent, double Reserved)> _days = [];

    // A day's spend being read from the store, once however many reservations wait for it.
    private readonly Dictionary<(string Tenant, string Agent, DateOnly Day), Lazy<Task<double>>> _loading = [];
    private readonly Lock _lock = new();
    private DateOnly _today;

    public int ReservedOutputTokens => _options.ReservedOutputTokens;

    public double? DailyBudget(string agent)
    {
        var budget = _options.DailyUsdByAgent.GetValueOrDefault(agent, _options.DefaultDailyUsd);
        return budget > 0 ? budget : null;
    }

    /// <returns>The reservation, or null with the budget and what is spent and reserved when it would be exceeded.</returns>
    public async Task<(SpendReservation? Reservation, double Budget, double Committed)> TryReserveAsync(string tenant, string agent, double estimatedUsd, CancellationToken cancellationToken)
    {
        var day = DateOnly.FromDateTime(timeProvider.GetUtcNow().UtcDateTime);
        if (DailyBudget(agent) is not { } budget)
        {
            return (new SpendReservation(tenant, agent, day, estimatedUsd), double.PositiveInfinity, 0);
        }

        var key = (tenant, agent, day);
        var stored = await StoredSpendAsync(key, cancellationToken);
        lock (_lock)
        {
            ForgetPastDays(day);
            var state = _days.TryGetValue(key, out var known) ? known : (stored, 0d);
            var committed = state.Item1 + state.Item2;
            if (committed + estimatedUsd > budget)
            {
                _days[key] = state;
                return (null, budget, committed);
            }

            _days[key] = (state.Item1, state.Item2 + estimatedUsd);
            return (new SpendReservation(tenant, agent, day, estimatedUsd), budget, committed);
        }
    }

    /// <summary>What the agent has spent or reserved today.</summary>
    public async Task<double> CommittedTodayAsync(string tenant, string agent, CancellationToken cancellationToken)
    {
        var day = DateOnly.FromDateTime(timeProvider.GetUtcNow().UtcDateTime);
        lock (_lock)
        {
            if (_days.TryGetValue((tenant, agent, day), out var known))
            {
                return known.Spent + known.Reserved;
            }
        }

        return await store.SpentOnAsync(tenant, agent, day, cancellationToken);
    }

    public async Task SettleAsync(SpendReservation reservation, double actualUsd, CancellationToken cancellationToken)
    {
        // Spend is kept for agents with a budget only: for the others there is nothing to enforce, and a
        // durable write on every call would put the store on the gateway's hot path.
        if (DailyBudget(reservation.Agent) is null)
        {
            return;
        }

        lock (_lock)
        {
            var key = (reservation.Tenant, reservation.Agent, reservation.Day);
            if (_days.TryGetValue(key, out var state))
            {
                _days[key] = (state.Spent + actualUsd, Math.Max(0, state.Reserved - reservation.Usd));
            }
        }

        // Outside the lock: the in-memory total above is what reservations check; the store only has to
        // hold the day's spend across a restart and for replicas that read it later.
        if (actualUsd > 0)
        {
            await store.AddAsync(reservation.Tenant, reservation.Agent, reservation.Day, actualUsd, cancellationToken);
        }
    }

    public Task ReleaseAsync(SpendReservation reservation, CancellationToken cancellationToken) => SettleAsync(reservation, 0, cancellationToken);

    /// <summary>Days and budgeted agents held in memory: today's only, one per budgeted agent that reserved today.</summary>
    public int DaysHeld
    {
        get
        {
            lock (_lock)
            {
                return _days.Count;
            }
        }
    }

    /// <summary>
    /// The day's spend in the store, read outside the lock and once for all reservations that wait for it;
    /// 0 without a read when the day is already in memory (the reservation then uses the memory's figure).
    /// A failed read is tried again by the next reservation.
    /// </summary>
    private async Task<double> StoredSpendAsync((string Tenant, string Agent, DateOnly Day) key, CancellationToken cancellationToken)
    {
        Lazy<Task<double>>? load;
        lock (_lock)
        {
            if (_days.ContainsKey(key))
            {
                return 0;
            }

            if (!_loading.TryGetValue(key, out load))
            {
                // Not cancelled by the first reservation's token: the others wait for the same read.
                load = new Lazy<Task<double>>(async () => await store.SpentOnAsync(key.Tenant, key.Agent, key.Day, CancellationToken.None));
                _loading[key] = load;
            }
        }

        try
        {
            return await load.Value.WaitAsync(cancellationToken);
        }
        finally
        {
            if (load.Value.IsCompleted)
            {
                lock (_lock)
                {
                    if (_loading.GetValueOrDefault(key) == load)
                    {
                        _loading.Remove(key);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Drops every day before <paramref name="today"/> once the date changes, so the ledger holds one day of
    /// budgeted agents rather than every day since start. A call still in flight at midnight settles its
    /// cost in the store only. Call with the lock held.
    /// </summary>
    private void ForgetPastDays(DateOnly today)
    {
        if (today == _today)
        {
            return;
        }

        _today = today;
        foreach (var key in _days.Keys.Where(k => k.Day < today).ToList())
        {
            _days.Remove(key);
        }
    }
}
