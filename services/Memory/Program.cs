// The memory service alone, beside its Dapr sidecar: `dapr run -f dapr.yaml`, compose or Helm.
PersistentAgents.Memory.MemoryServiceHost.Build(args).Run();
