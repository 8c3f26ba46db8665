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
    double SpentOn(string tenant, string agent, DateOnly day);

    void Add(string tenant, string agent, DateOnly day, double usd);
}

/// <summary>A call's cost held against the budget until it is known.</summary>
public sealed record SpendReservation(string Tenant, string Agent, DateOnly Day, double Usd);

/// <summary>
/// Per-agent daily budgets, enforced before every provider call: the call's estimated cost is reserved
/// first and refused when spend plus reservations would pass the budget, so concurrent calls cannot
/// overspend it by more than one call's misestimate; the actual cost replaces the reservation after.
/// </summary>
public sealed class SpendLedger(ISpendStore store, IOptions<BudgetOptions> options, TimeProvider timeProvider)
{
    private readonly BudgetOptions _options = options.Value;
    private readonly Dictionary<(string Tenant, string Agent, DateOnly Day), (double Spent, double Reserved)> _days = [];
    private readonly Lock _lock = new();
    private DateOnly _today;

    public int ReservedOutputTokens => _options.ReservedOutputTokens;

    public double? DailyBudget(string agent)
    {
        var budget = _options.DailyUsdByAgent.GetValueOrDefault(agent, _options.DefaultDailyUsd);
        return budget > 0 ? budget : null;
    }

    /// <returns>The reservation, or null with the budget and what is spent and reserved when it would be exceeded.</returns>
    public (SpendReservation? Reservation, double Budget, double Committed) TryReserve(string tenant, string agent, double estimatedUsd)
    {
        var day = DateOnly.FromDateTime(timeProvider.GetUtcNow().UtcDateTime);
        if (DailyBudget(agent) is not { } budget)
        {
            return (new SpendReservation(tenant, agent, day, estimatedUsd), double.PositiveInfinity, 0);
        }

        lock (_lock)
        {
            ForgetPastDays(day);
            var key = (tenant, agent, day);
            var state = _days.TryGetValue(key, out var known) ? known : (store.SpentOn(tenant, agent, day), 0d);
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
    public double CommittedToday(string tenant, string agent)
    {
        var day = DateOnly.FromDateTime(timeProvider.GetUtcNow().UtcDateTime);
        lock (_lock)
        {
            var (spent, reserved) = _days.TryGetValue((tenant, agent, day), out var known) ? known : (store.SpentOn(tenant, agent, day), 0d);
            return spent + reserved;
        }
    }

    public void Settle(SpendReservation reservation, double actualUsd)
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
        // hold the day's spend across a restart.
        if (actualUsd > 0)
        {
            store.Add(reservation.Tenant, reservation.Agent, reservation.Day, actualUsd);
        }
    }

    public void Release(SpendReservation reservation) => Settle(reservation, 0);

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
