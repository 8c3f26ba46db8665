// The agents service alone, beside its Dapr sidecar: `dapr run -f dapr.yaml`, compose or Helm.
PersistentAgents.Agents.AgentsServiceHost.Build(args).Run();
