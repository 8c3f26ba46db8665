namespace PersistentAgents.Learning;

/// <summary>
/// One gate per agent, so that one agent's outcomes are serialized while other agents' proceed. A gate lives
/// only while someone holds it or waits for it: agents come and go, and a gate kept per agent ever seen would
/// grow without bound.
/// </summary>
internal sealed class AgentGates : IDisposable
{
    private readonly Dictionary<(string Tenant, string Agent), Gate> _gates = [];

    /// <summary>Gates held or waited for: a figure for tests that gates are let go.</summary>
    public int Live
    {
        get
        {
            lock (_gates)
            {
                return _gates.Count;
            }
        }
    }

    /// <summary>Waits for the agent's gate; disposing the result lets it go.</summary>
    public async Task<IDisposable> EnterAsync(string tenant, string agent, CancellationToken cancellationToken)
    {
        var key = (tenant, agent);
        Gate gate;
        lock (_gates)
        {
            if (!_gates.TryGetValue(key, out gate!))
            {
                gate = new Gate();
                _gates[key] = gate;
            }

            gate.Users++;
        }

        try
        {
            await gate.Semaphore.WaitAsync(cancellationToken);
        }
        catch
        {
            Leave(key, gate, held: false);
            throw;
        }

        return new Held(this, key, gate);
    }

    /// <summary>Whether someone holds or waits for the agent's gate.</summary>
    public bool InUse(string tenant, string agent)
    {
        lock (_gates)
        {
            return _gates.ContainsKey((tenant, agent));
        }
    }

    public void Dispose()
    {
        lock (_gates)
        {
            foreach (var gate in _gates.Values)
            {
                gate.Semaphore.Dispose();
            }

            _gates.Clear();
        }
    }

    private void Leave((string Tenant, string Agent) key, Gate gate, bool held)
    {
        lock (_gates)
        {
            if (held)
            {
                gate.Semaphore.Release();
            }

            if (--gate.Users == 0)
            {
                _gates.Remove(key);
                gate.Semaphore.Dispose();
            }
        }
    }

    private sealed class Gate
    {
        public SemaphoreSlim Semaphore { get; } = new(1, 1);

        // Holders and waiters; guarded by the dictionary's lock.
        public int Users { get; set; }
    }

    private sealed class Held(AgentGates gates, (string Tenant, string Agent) key, Gate gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gates.Leave(key, gate, held: true);
            }
        }
    }
}
