// The learning service alone, beside its Dapr sidecar: `dapr run -f dapr.yaml`, compose or Helm.
PersistentAgents.Learning.LearningServiceHost.Build(args).Run();
