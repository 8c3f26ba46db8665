// The gateway alone, beside its Dapr sidecar: `dapr run -f dapr.yaml`, compose or Helm.
PersistentAgents.Gateway.GatewayServiceHost.Build(args).Run();
