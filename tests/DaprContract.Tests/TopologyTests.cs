using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using PersistentAgents.Contracts;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// The three distributed topologies (dapr.yaml, docker-compose.yml with deploy/compose/, the Helm chart in
/// deploy/helm/persistent-agents) and the service Dockerfiles agree with the code: app ids, ports and
/// protocols (<see cref="DaprComponents.Apps"/>, <see cref="DaprComponents.AppPorts"/>), the components
/// it names with their types and scopes (<see cref="DaprComponents.Required"/>), the Configuration, and the
/// gRPC services of the .proto files the access control names. None of these files can run here (no Docker
/// engine, no daprd, no helm): this is what checks them. Helm templates are read as YAML once their
/// template actions are taken out (<see cref="HelmAsYaml"/>).
/// </summary>
public sealed partial class TopologyTests
{
    private const string Templated = "TEMPLATED";
    private static readonly string Root = RepositoryRoot.Find();
    private static readonly string ChartFolder = Path.Combine(Root, "deploy", "helm", "persistent-agents");
    private static readonly string[] ActorStateStoreTrue = ["true"];
    private static readonly string[] DotnetRun = ["dotnet", "run"];

    private sealed record App(string Id, string Project, int Port, string Protocol);

    private static readonly App[] Apps =
    [
        new(DaprComponents.Apps.Agents, "Agents", DaprComponents.AppPorts.Agents, "http"),
        new(DaprComponents.Apps.Memory, "Memory", DaprComponents.AppPorts.Memory, "grpc"),
        new(DaprComponents.Apps.Learning, "Learning", DaprComponents.AppPorts.Learning, "grpc"),
        new(DaprComponents.Apps.Gateway, "Gateway", DaprComponents.AppPorts.Gateway, "grpc"),
    ];

    private static App AppOf(string id) => Apps.Single(a => a.Id == id);

    /// <summary>The ports a service's container listens on: agents also serves its public gRPC API.</summary>
    private static int[] PortsOf(App app) =>
        app.Id == DaprComponents.Apps.Agents ? [app.Port, DaprComponents.AppPorts.AgentsGrpc] : [app.Port];

    public static TheoryData<string> AppIds => [.. Apps.Select(a => a.Id)];

    public static TheoryData<string> RequiredNames => [.. DaprComponents.Required.Select(r => r.Name)];

    // ---- dapr.yaml -------------------------------------------------------------------------------

    [Fact]
    public void Dapr_run_file_runs_the_four_apps_on_components_and_agent_config()
    {
        var run = Single(Path.Combine(Root, "dapr.yaml"));

        Assert.Equal(Apps.Select(a => a.Id).Order(StringComparer.Ordinal), List(run, "apps").Select(a => Text(a, "appID")).Order(StringComparer.Ordinal));
        Assert.Contains("./components", List(run, "common", "resourcesPaths").Select(p => p.ToString()));
        AssertIsAgentConfig(Path.Combine(Root, Text(run, "common", "configFilePath")));
    }

    [Theory]
    [MemberData(nameof(AppIds))]
    public void Dapr_run_file_starts_each_app_with_its_port_protocol_and_project(string appId)
    {
        var app = AppOf(appId);
        var entry = Assert.Single(List(Single(Path.Combine(Root, "dapr.yaml")), "apps"), a => Text(a, "appID") == appId);

        Assert.Equal(Number(app.Port), Text(entry, "appPort"));
        Assert.Equal(app.Protocol, Text(entry, "appProtocol"));
        Assert.Equal($"./services/{app.Project}", Text(entry, "appDirPath"));
        Assert.True(File.Exists(Path.Combine(Root, "services", app.Project, $"{app.Project}.csproj")), $"no project for {appId}");
        Assert.Equal(DotnetRun, List(entry, "command").Take(2).Select(c => c.ToString()));
        Assert.EndsWith($":{Number(app.Port)}", Text(entry, "env", "ASPNETCORE_URLS"), StringComparison.Ordinal);
    }

    // ---- docker-compose.yml ----------------------------------------------------------------------

    private static Dictionary<object, object> ComposeServices() => Map(Single(Path.Combine(Root, "docker-compose.yml")), "services");

    private static Dictionary<string, Dictionary<object, object>> Sidecars() =>
        ComposeServices()
            .Where(s => Text(s.Value, "image").StartsWith("daprio/daprd:", StringComparison.Ordinal))
            .ToDictionary(s => s.Key.ToString()!, s => (Dictionary<object, object>)s.Value);

    /// <summary>daprd's flags from a compose command: <c>--name value</c> pairs and bare boolean flags.</summary>
    private static Dictionary<string, List<string>> Flags(object? service)
    {
        var args = List(service, "command").Select(a => a.ToString() ?? "").ToList();
        var flags = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                continue;
            }

            var (name, value) = args[i].Split('=', 2) is [var n, var v] ? (n, v)
                : i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? (args[i], args[++i])
                : (args[i], "true");
            flags.TryAdd(name, []);
            flags[name].Add(value);
        }

        return flags;
    }

    private static string Flag(Dictionary<string, List<string>> flags, string name) =>
        flags.TryGetValue(name, out var values) ? Assert.Single(values) : "";

    /// <summary>The host path (under the repository) that a path inside a compose container comes from.</summary>
    private static string HostPath(object? service, string containerPath)
    {
        foreach (var volume in List(service, "volumes").Select(v => v.ToString() ?? ""))
        {
            var parts = volume.Split(':');
            var (source, target) = (parts[0], parts[1]);
            if (containerPath == target || containerPath.StartsWith(target + "/", StringComparison.Ordinal))
            {
                return Path.GetFullPath(Path.Combine(Root, source + containerPath[target.Length..]));
            }
        }

        Assert.Fail($"{containerPath} is not mounted from the repository");
        return "";
    }

    /// <summary>The repository's YAML files a compose container sees in a folder: a mounted folder's, and files mounted into it one by one.</summary>
    private static List<string> MountedFiles(object? service, string containerFolder)
    {
        var files = new List<string>();
        foreach (var volume in List(service, "volumes").Select(v => v.ToString() ?? ""))
        {
            var parts = volume.Split(':');
            var (source, target) = (Path.GetFullPath(Path.Combine(Root, parts[0])), parts[1]);
            if (target == containerFolder && Directory.Exists(source))
            {
                files.AddRange(Directory.EnumerateFiles(source, "*.yaml"));
            }
            else if (Path.GetDirectoryName(target) == containerFolder && File.Exists(source))
            {
                files.Add(source);
            }
        }

        return files;
    }

    [Fact]
    public void Compose_runs_one_sidecar_per_app_in_the_network_namespace_of_its_service()
    {
        var sidecars = Sidecars();
        var ids = sidecars.Values.Select(s => Flag(Flags(s), "--app-id")).ToList();

        Assert.Equal(Apps.Select(a => a.Id).Order(StringComparer.Ordinal), ids.Order(StringComparer.Ordinal));
        Assert.All(sidecars.Values, s => Assert.Equal($"service:{Flag(Flags(s), "--app-id")}", Text(s, "network_mode")));
    }

    [Theory]
    [MemberData(nameof(AppIds))]
    public void Compose_sidecar_runs_with_the_app_id_port_protocol_config_and_resources_of_its_service(string appId)
    {
        var app = AppOf(appId);
        var services = ComposeServices();
        var sidecar = Assert.Single(Sidecars().Values, s => Flag(Flags(s), "--app-id") == appId);
        var flags = Flags(sidecar);

        Assert.Equal(Number(app.Port), Flag(flags, "--app-port"));
        Assert.Equal(app.Protocol, Flag(flags, "--app-protocol"));
        AssertIsAgentConfig(HostPath(sidecar, Flag(flags, "--config")));
        var resources = flags["--resources-path"].SelectMany(p => MountedFiles(sidecar, p)).ToList();
        Assert.All(Directory.EnumerateFiles(Path.Combine(Root, "deploy", "compose", "components"), "*.yaml"), f => Assert.Contains(f, resources));
        Assert.Contains(Path.Combine(Root, "components", "resiliency.yaml"), resources);
        foreach (var address in new[] { Flag(flags, "--placement-host-address"), Flag(flags, "--scheduler-host-address") })
        {
            Assert.True(services.ContainsKey(address.Split(':')[0]), $"{appId}'s sidecar reaches {address}, which compose does not run");
        }

        if (appId == DaprComponents.Apps.Agents)
        {
            Assert.Equal("/healthz", Flag(flags, "--app-health-check-path"));
        }

        var service = Map(services, appId);
        Assert.Equal(".", Text(service, "build", "context"));
        Assert.Equal($"services/{app.Project}/Dockerfile", Text(service, "build", "dockerfile"));
        Assert.EndsWith($":{Number(app.Port)}", Text(service, "environment", "ASPNETCORE_URLS"), StringComparison.Ordinal);
    }

    [Fact]
    public void Compose_runs_the_control_plane_backends_and_tools_the_topology_needs()
    {
        var images = ComposeServices().Values.Select(s => Text(s, "image")).ToList();
        string[] expected = ["daprio/dapr:", "redis:", "pgvector/pgvector:pg17", "minio/minio:", "minio/mc:", "openzipkin/zipkin:", "daprio/dashboard:"];

        Assert.All(expected, prefix => Assert.Contains(images, image => image.StartsWith(prefix, StringComparison.Ordinal)));
        var commands = ComposeServices().Values.Select(s => string.Join(' ', List(s, "command"))).ToList();
        Assert.Contains(commands, c => c.StartsWith("./placement", StringComparison.Ordinal));
        Assert.Contains(commands, c => c.StartsWith("./scheduler", StringComparison.Ordinal));
    }

    [Fact]
    public void Compose_components_are_exactly_the_ones_the_code_names()
    {
        var names = Components(Path.Combine(Root, "deploy", "compose", "components")).Select(c => c.Name).ToList();

        Assert.Equal(DaprComponents.Required.Select(r => r.Name).Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(RequiredNames))]
    public void Compose_component_is_typed_and_scoped_as_in_components(string name)
    {
        var component = Assert.Single(Components(Path.Combine(Root, "deploy", "compose", "components")), c => c.Name == name);

        AssertTypedAndScoped(component);
    }

    [Fact]
    public void Compose_components_reach_backends_that_compose_runs()
    {
        var services = ComposeServices();
        foreach (var component in Components(Path.Combine(Root, "deploy", "compose", "components")))
        {
            foreach (var item in List(component.Document, "spec", "metadata"))
            {
                var value = Text(item, "value");
                var host = Text(item, "name") switch
                {
                    "redisHost" => value.Split(':')[0],
                    "connectionString" => ConnectionHost().Match(value).Groups[1].Value,
                    "endpoint" => new Uri(value).Host,
                    _ => null,
                };
                Assert.True(host is null || services.ContainsKey(host), $"{component.Source}: {Text(item, "name")} points at '{host}', which compose does not run");
            }
        }
    }

    [Fact]
    public void Compose_sidecars_hold_every_secret_their_components_and_the_gateway_catalog_read()
    {
        var components = Components(Path.Combine(Root, "deploy", "compose", "components"));
        Assert.Equal("secretstores.local.env", components.Single(c => c.Name == DaprComponents.Secrets).Type);
        var sidecarOf = Sidecars().Values.ToDictionary(s => Flag(Flags(s), "--app-id"));

        foreach (var component in components.Where(c => Text(c.Document, "auth", "secretStore") == DaprComponents.Secrets))
        {
            foreach (var secret in List(component.Document, "spec", "metadata").Select(m => Text(m, "secretKeyRef", "name")).Where(n => n.Length > 0))
            {
                Assert.All(component.Scopes, app => Assert.True(Map(sidecarOf[app], "environment").ContainsKey(secret),
                    $"{component.Source} reads secret {secret}, which {app}'s sidecar environment does not set"));
            }
        }

        var catalogs = Directory.EnumerateFiles(Path.Combine(Root, "services"), "catalog.yaml", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.NotEmpty(catalogs);
        var keyNames = catalogs.SelectMany(f => List(Single(f), "providers")).Select(p => Text(p, "apiKeySecret")).Where(n => n.Length > 0).ToList();
        Assert.NotEmpty(keyNames);
        Assert.All(keyNames, key => Assert.True(Map(sidecarOf[DaprComponents.Apps.Gateway], "environment").ContainsKey(key),
            $"the gateway's catalog reads {key}, which its sidecar's environment does not set"));
    }

    // ---- Configurations and access control -------------------------------------------------------

    private static readonly string[] ConfigurationFiles =
    [
        "components/config.yaml",
        "components/alternatives/config.acl.yaml",
        "deploy/compose/configuration/config.yaml",
        "deploy/helm/persistent-agents/templates/configuration.yaml",
    ];

    public static TheoryData<string> Configurations => [.. ConfigurationFiles];

    private static Dictionary<object, object> Configuration(string relativePath) =>
        relativePath.StartsWith("deploy/helm/", StringComparison.Ordinal)
            ? Assert.Single(Documents(HelmAsYaml(File.ReadAllText(Path.Combine(Root, relativePath)))))
            : Single(Path.Combine(Root, relativePath));

    private static void AssertIsAgentConfig(string file)
    {
        Assert.True(File.Exists(file), $"{file} does not exist");
        var document = Single(file);
        Assert.Equal("Configuration", Text(document, "kind"));
        Assert.Equal(DaprComponents.Configuration, Text(document, "metadata", "name"));
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Every_configuration_is_agent_config_with_tracing_and_actor_state_ttl(string file)
    {
        var configuration = Configuration(file);

        Assert.Equal("Configuration", Text(configuration, "kind"));
        Assert.Equal(DaprComponents.Configuration, Text(configuration, "metadata", "name"));
        Assert.NotEmpty(Text(configuration, "spec", "tracing", "samplingRate"));
        // Actor-state writes with ttlInSeconds are rejected without it (docs/architecture.md, 'Dapr facts').
        Assert.Contains(List(configuration, "spec", "features"), f => Text(f, "name") == "ActorStateTTL" && Text(f, "enabled") == "true");
    }

    [Fact]
    public void Configurations_of_sidecars_without_mtls_carry_no_access_control()
    {
        // Without a SPIFFE identity the callee's sidecar applies the global defaultAction, so a deny
        // policy in self-hosted mode or compose (no Sentry) would refuse every call.
        Assert.Empty(Map(Configuration("components/config.yaml"), "spec", "accessControl"));
        Assert.Empty(Map(Configuration("deploy/compose/configuration/config.yaml"), "spec", "accessControl"));
    }

    [Fact]
    public void Compose_traces_to_the_zipkin_it_runs()
    {
        var endpoint = Text(Configuration("deploy/compose/configuration/config.yaml"), "spec", "tracing", "zipkin", "endpointAddress");

        Assert.True(ComposeServices().ContainsKey(new Uri(endpoint).Host), $"traces go to {endpoint}, which compose does not run");
    }

    public static TheoryData<string> AccessControlledConfigurations =>
        ["components/alternatives/config.acl.yaml", "deploy/helm/persistent-agents/templates/configuration.yaml"];

    [Theory]
    [MemberData(nameof(AccessControlledConfigurations))]
    public void Access_control_lets_only_agents_invoke_and_only_memory_learning_and_gateway(string file)
    {
        var acl = Map(Configuration(file), "spec", "accessControl");
        Assert.Equal("deny", Text(acl, "defaultAction"));
        Assert.NotEmpty(Text(acl, "trustDomain"));
        // daprd rejects the whole spec when a policy lacks one of these.
        Assert.All(List(acl, "policies"), p =>
        {
            Assert.NotEmpty(Text(p, "appId"));
            Assert.NotEmpty(Text(p, "trustDomain"));
            Assert.NotEmpty(Text(p, "namespace"));
        });

        var operations = GrpcOperations();
        foreach (var caller in Apps)
        {
            foreach (var callee in Apps)
            {
                var expected = caller.Id == DaprComponents.Apps.Agents && callee.Id != DaprComponents.Apps.Agents;
                foreach (var operation in operations[callee.Id])
                {
                    Assert.True(expected == Allows(acl, caller.Id, operation),
                        $"{file}: {caller.Id} → {callee.Id} {operation} is {(expected ? "denied" : "allowed")}");
                }
            }
        }
    }

    /// <summary>Dapr's evaluation (pkg/acl): the caller's policy, else the global default; an operation rule overrides the policy's default.</summary>
    private static bool Allows(Dictionary<object, object> acl, string caller, string operation)
    {
        var action = Text(acl, "defaultAction");
        if (List(acl, "policies").SingleOrDefault(p => Text(p, "appId") == caller) is { } policy)
        {
            action = Text(policy, "defaultAction") is { Length: > 0 } policyDefault ? policyDefault : action;
            foreach (var rule in List(policy, "operations"))
            {
                var name = Text(rule, "name");
                var matches = name.EndsWith("/*", StringComparison.Ordinal)
                    ? operation.StartsWith(name[..^1], StringComparison.Ordinal) && !operation[(name.Length - 1)..].Contains('/', StringComparison.Ordinal)
                    : operation == name;
                if (matches)
                {
                    action = Text(rule, "action") is { Length: > 0 } ruleAction ? ruleAction : "allow";
                }
            }
        }

        return string.Equals(action, "allow", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The gRPC method paths (/package.Service/Method) each app serves, read from the .proto files.</summary>
    private static Dictionary<string, List<string>> GrpcOperations()
    {
        var operations = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var proto in Directory.EnumerateFiles(Path.Combine(Root, "services", "Contracts", "Protos"), "*.proto"))
        {
            var text = File.ReadAllText(proto);
            var services = ProtoService().Matches(text);
            if (services.Count == 0)
            {
                continue;
            }

            var service = Assert.Single(services).Groups[1].Value;
            var package = ProtoPackage().Match(text).Groups[1].Value;
            // ApiKeys (admin.proto) is the agents service's second public service.
            var app = Assert.Single(Apps, a => a.Project == (service == "ApiKeys" ? "Agents" : service));
            var rpcs = ProtoRpc().Matches(text).Select(m => $"/{package}.{service}/{m.Groups[1].Value}").ToList();
            Assert.NotEmpty(rpcs);
            operations[app.Id] = [.. operations.GetValueOrDefault(app.Id) ?? [], .. rpcs];
            if (service == "Agents")
            {
                // agents' HTTP app channel serves more than gRPC: nothing there may be invoked either.
                operations[app.Id].AddRange(["/healthz", "/v1/agents/a/complete", "/dapr/subscribe", "/actors/PersistentAgent/a/method/Complete"]);
            }
        }

        Assert.Equal(Apps.Length, operations.Count);
        return operations;
    }

    // ---- Helm chart -------------------------------------------------------------------------------

    /// <summary>
    /// A Go template as YAML: lines that hold only template actions (if, range, include ... | nindent,
    /// comments) go, and every other action becomes a placeholder scalar. Every branch of an if/else is
    /// kept, so each backend variant of a component reads as its own document.
    /// </summary>
    private static string HelmAsYaml(string template) =>
        string.Join('\n', template.Split('\n')
            .Where(line => !ActionLine().IsMatch(line))
            .Select(line => InlineAction().Replace(line, Templated)));

    private static List<(string File, Dictionary<object, object> Document)> HelmDocuments() =>
        [.. Directory.EnumerateFiles(Path.Combine(ChartFolder, "templates"), "*.yaml")
            .Order(StringComparer.Ordinal)
            .SelectMany(f => Documents(HelmAsYaml(File.ReadAllText(f))).Select(d => (Path.GetFileName(f), d)))];

    private static string PodAnnotation(Dictionary<object, object> deployment, string name) =>
        Text(deployment, "spec", "template", "metadata", "annotations", name);

    [Fact]
    public void Helm_chart_deploys_exactly_the_four_apps()
    {
        var ids = HelmDocuments().Where(d => Text(d.Document, "kind") == "Deployment").Select(d => PodAnnotation(d.Document, "dapr.io/app-id"));

        Assert.Equal(Apps.Select(a => a.Id).Order(StringComparer.Ordinal), ids.Order(StringComparer.Ordinal));
        var chart = Single(Path.Combine(ChartFolder, "Chart.yaml"));
        Assert.Equal("v2", Text(chart, "apiVersion"));
        Assert.Equal("persistent-agents", Text(chart, "name"));
    }

    [Theory]
    [MemberData(nameof(AppIds))]
    public void Helm_deployment_carries_the_dapr_annotations_ports_and_probes_of_its_app(string appId)
    {
        var app = AppOf(appId);
        var documents = HelmDocuments();
        var (file, deployment) = Assert.Single(documents, d => Text(d.Document, "kind") == "Deployment" && PodAnnotation(d.Document, "dapr.io/app-id") == appId);

        Assert.Equal("true", PodAnnotation(deployment, "dapr.io/enabled"));
        Assert.Equal(Number(app.Port), PodAnnotation(deployment, "dapr.io/app-port"));
        Assert.Equal(app.Protocol, PodAnnotation(deployment, "dapr.io/app-protocol"));
        Assert.Equal(DaprComponents.Configuration, PodAnnotation(deployment, "dapr.io/config"));

        var container = Assert.Single(List(deployment, "spec", "template", "spec", "containers"));
        Assert.Equal(PortsOf(app).Select(Number), List(container, "ports").Select(p => Text(p, "containerPort")));
        Assert.Contains(List(container, "env"), e => Text(e, "name") == "ASPNETCORE_URLS" && Text(e, "value").EndsWith($":{Number(app.Port)}", StringComparison.Ordinal));
        Assert.Equal("true", Text(container, "securityContext", "runAsNonRoot"));
        foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
        {
            if (app.Protocol == "http")
            {
                Assert.Equal("/healthz", Text(container, probe, "httpGet", "path"));
                Assert.Equal(Number(app.Port), Text(container, probe, "httpGet", "port"));
            }
            else
            {
                // Native gRPC probes ask grpc.health.v1 on the app port.
                Assert.Equal(Number(app.Port), Text(container, probe, "grpc", "port"));
            }
        }

        var name = Text(deployment, "metadata", "name");
        var service = Assert.Single(documents, d => d.File == file && Text(d.Document, "kind") == "Service").Document;
        Assert.Equal(name, Text(service, "metadata", "name"));
        Assert.Equal(PortsOf(app).Select(Number), List(service, "spec", "ports").Select(p => Text(p, "port")));

        // The stateless services scale on CPU; agents hosts actors and scales by replicas.
        var autoscalers = documents.Where(d => d.File == file && Text(d.Document, "kind") == "HorizontalPodAutoscaler").Select(d => d.Document).ToList();
        if (appId == DaprComponents.Apps.Agents)
        {
            Assert.Empty(autoscalers);
        }
        else
        {
            Assert.Equal(name, Text(Assert.Single(autoscalers), "spec", "scaleTargetRef", "name"));
        }

        var values = Single(Path.Combine(ChartFolder, "values.yaml"));
        Assert.NotEmpty(Text(values, appId, "image", "repository"));
        Assert.Contains($".Values.{appId}", File.ReadAllText(Path.Combine(ChartFolder, "templates", file)), StringComparison.Ordinal);
    }

    /// <summary>Each component's backends as values name them, and the component type each renders.</summary>
    private static readonly (string ValuesKey, string Component, Dictionary<string, string> Types)[] Backends =
    [
        ("workingMemory", DaprComponents.WorkingMemory, new() { ["redis"] = "state.redis", ["postgresql"] = "state.postgresql" }),
        ("semanticMemory", DaprComponents.SemanticMemory, new() { ["postgresql"] = "bindings.postgresql" }),
        ("episodicMemory", DaprComponents.EpisodicMemory, new() { ["s3"] = "bindings.aws.s3", ["azureblob"] = "bindings.azure.blobstorage" }),
        ("actorState", DaprComponents.ActorState, new() { ["redis"] = "state.redis", ["postgresql"] = "state.postgresql" }),
        ("learningState", DaprComponents.LearningState, new() { ["redis"] = "state.redis", ["postgresql"] = "state.postgresql" }),
        ("gatewayState", DaprComponents.GatewayState, new() { ["redis"] = "state.redis", ["postgresql"] = "state.postgresql" }),
        ("pubsub", DaprComponents.PubSub, new() { ["redis"] = "pubsub.redis" }),
        ("secrets", DaprComponents.Secrets, new() { ["env"] = "secretstores.local.env", ["kubernetes"] = "secretstores.kubernetes" }),
    ];

    private static List<Component> HelmComponents() =>
        [.. HelmDocuments().Where(d => Text(d.Document, "kind") == "Component").Select(d => ComponentOf(d.File, d.Document))];

    [Theory]
    [MemberData(nameof(RequiredNames))]
    public void Helm_component_is_typed_and_scoped_as_in_components_in_every_backend(string name)
    {
        var variants = HelmComponents().Where(c => c.Name == name).ToList();

        Assert.NotEmpty(variants);
        Assert.All(variants, AssertTypedAndScoped);
        Assert.All(variants, v => Assert.Equal(Templated, Text(v.Document, "metadata", "namespace")));
    }

    [Fact]
    public void Helm_component_backends_are_the_ones_values_and_its_schema_offer()
    {
        var components = HelmComponents();
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(ChartFolder, "values.schema.json")));
        var values = Single(Path.Combine(ChartFolder, "values.yaml"));

        Assert.Equal(DaprComponents.Required.Select(r => r.Name).Order(StringComparer.Ordinal), Backends.Select(b => b.Component).Order(StringComparer.Ordinal));
        foreach (var (key, component, types) in Backends)
        {
            var offered = schema.RootElement.GetProperty("properties").GetProperty("components").GetProperty("properties")
                .GetProperty(key).GetProperty("properties").GetProperty("backend").GetProperty("enum")
                .EnumerateArray().Select(e => e.GetString()!);
            Assert.Equal(types.Keys.Order(StringComparer.Ordinal), offered.Order(StringComparer.Ordinal));
            Assert.Equal(types.Values.Order(StringComparer.Ordinal), components.Where(c => c.Name == component).Select(c => c.Type).Order(StringComparer.Ordinal));
            Assert.Contains(Text(values, "components", key, "backend"), types.Keys);
            var template = File.ReadAllText(Path.Combine(ChartFolder, "templates", Assert.Single(components, c => c.Name == component && c.Type == types.Values.First()).Source));
            Assert.All(types.Keys, backend => Assert.Contains($"eq $backend \"{backend}\"", template, StringComparison.Ordinal));
        }

        Assert.All(components.Where(c => c.Name == DaprComponents.ActorState), c => Assert.Equal(ActorStateStoreTrue,
            List(c.Document, "spec", "metadata").Where(m => Text(m, "name") == "actorStateStore").Select(m => Text(m, "value"))));
    }

    [Fact]
    public void Helm_resiliency_is_the_resiliency_of_components()
    {
        var chart = Assert.Single(HelmDocuments(), d => Text(d.Document, "kind") == "Resiliency").Document;
        var components = Single(Path.Combine(Root, "components", "resiliency.yaml"));

        Assert.Equal(Text(components, "metadata", "name"), Text(chart, "metadata", "name"));
        Assert.True(DeepEquals(Map(components, "spec"), Map(chart, "spec")), "templates/resiliency.yaml and components/resiliency.yaml have different specs");
    }

    [Fact]
    public void Resiliency_targets_the_apps_and_components_the_code_names_with_declared_policies()
    {
        var resiliency = Single(Path.Combine(Root, "components", "resiliency.yaml"));
        var policies = Map(resiliency, "spec", "policies");

        Assert.All(Map(resiliency, "spec", "targets", "apps"), target =>
        {
            Assert.Contains(target.Key.ToString(), Apps.Select(a => a.Id));
            AssertDeclared(policies, target.Value);
        });
        Assert.Equal(DaprComponents.Required.Select(r => r.Name).Order(StringComparer.Ordinal),
            Map(resiliency, "spec", "targets", "components").Keys.Select(k => k.ToString()!).Order(StringComparer.Ordinal));
        Assert.All(Map(resiliency, "spec", "targets", "components").Values, target =>
        {
            AssertDeclared(policies, Map(target, "inbound"));
            AssertDeclared(policies, Map(target, "outbound"));
        });
        // A deadLetterTopic without inbound retries dead-letters on the first failure
        // (docs/architecture.md, 'Dapr facts').
        Assert.NotEmpty(Text(resiliency, "spec", "targets", "components", DaprComponents.PubSub, "inbound", "retry"));
    }

    private static void AssertDeclared(Dictionary<object, object> policies, object? target)
    {
        foreach (var (kind, family) in new[] { ("timeout", "timeouts"), ("retry", "retries"), ("circuitBreaker", "circuitBreakers") })
        {
            var policy = Text(target, kind);
            Assert.True(policy.Length == 0 || Map(policies, family).ContainsKey(policy), $"{kind} policy '{policy}' is not declared");
        }
    }

    [Fact]
    public void Helm_values_schema_is_valid_json_and_values_yaml_conforms_to_it()
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(ChartFolder, "values.schema.json")));
        var stream = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(ChartFolder, "values.yaml")))
        {
            stream.Load(reader);
        }

        var errors = new List<string>();
        Conform(schema.RootElement, schema.RootElement, Assert.Single(stream.Documents).RootNode, "values", errors);

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    private static readonly HashSet<string> SchemaKeywords =
        ["$schema", "$ref", "definitions", "title", "description", "type", "required", "properties", "additionalProperties", "items", "enum", "minimum", "maximum", "minLength", "pattern"];

    /// <summary>The part of JSON Schema (draft-07) the chart's schema uses, checked on YAML nodes typed as Helm reads them.</summary>
    private static void Conform(JsonElement root, JsonElement schema, YamlNode node, string path, List<string> errors)
    {
        foreach (var keyword in schema.EnumerateObject().Where(k => !SchemaKeywords.Contains(k.Name)))
        {
            errors.Add($"{path}: the schema uses '{keyword.Name}', which this test does not check");
        }

        if (schema.TryGetProperty("$ref", out var reference))
        {
            var target = root;
            foreach (var part in reference.GetString()!.TrimStart('#', '/').Split('/'))
            {
                target = target.GetProperty(part);
            }

            Conform(root, target, node, path, errors);
            return;
        }

        var kind = KindOf(node);
        if (schema.TryGetProperty("type", out var type))
        {
            var allowed = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()).ToList() : [type.GetString()];
            if (!allowed.Contains(kind) && !(kind == "integer" && allowed.Contains("number")))
            {
                errors.Add($"{path}: is {kind}, the schema wants {string.Join(" or ", allowed)}");
                return;
            }
        }

        if (node is YamlScalarNode { Value: var text })
        {
            text ??= "";
            if (schema.TryGetProperty("enum", out var values) && !values.EnumerateArray().Any(v => v.ToString() == text))
            {
                errors.Add($"{path}: '{text}' is not one of {values}");
            }

            if (schema.TryGetProperty("minimum", out var minimum) && kind is "integer" or "number" && double.Parse(text, CultureInfo.InvariantCulture) < minimum.GetDouble())
            {
                errors.Add($"{path}: {text} is below {minimum}");
            }

            if (schema.TryGetProperty("maximum", out var maximum) && kind is "integer" or "number" && double.Parse(text, CultureInfo.InvariantCulture) > maximum.GetDouble())
            {
                errors.Add($"{path}: {text} is above {maximum}");
            }

            if (schema.TryGetProperty("minLength", out var minLength) && text.Length < minLength.GetInt32())
            {
                errors.Add($"{path}: '{text}' is shorter than {minLength}");
            }

            if (schema.TryGetProperty("pattern", out var pattern) && !Regex.IsMatch(text, pattern.GetString()!, RegexOptions.None, TimeSpan.FromSeconds(1)))
            {
                errors.Add($"{path}: '{text}' does not match {pattern}");
            }
        }

        if (node is YamlMappingNode mapping)
        {
            var keys = mapping.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToList();
            if (schema.TryGetProperty("required", out var required))
            {
                errors.AddRange(required.EnumerateArray().Select(r => r.GetString()!).Where(r => !keys.Contains(r)).Select(r => $"{path}: lacks the required '{r}'"));
            }

            var properties = schema.TryGetProperty("properties", out var declared) ? declared : default;
            foreach (var (key, child) in mapping.Children.Select(c => (((YamlScalarNode)c.Key).Value!, c.Value)))
            {
                if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(key, out var propertySchema))
                {
                    Conform(root, propertySchema, child, $"{path}.{key}", errors);
                }
                else if (schema.TryGetProperty("additionalProperties", out var additional))
                {
                    if (additional.ValueKind == JsonValueKind.False)
                    {
                        errors.Add($"{path}: '{key}' is not a property the schema allows");
                    }
                    else if (additional.ValueKind == JsonValueKind.Object)
                    {
                        Conform(root, additional, child, $"{path}.{key}", errors);
                    }
                }
            }
        }

        if (node is YamlSequenceNode sequence && schema.TryGetProperty("items", out var items))
        {
            foreach (var (child, index) in sequence.Children.Select((c, i) => (c, i)))
            {
                Conform(root, items, child, $"{path}[{index}]", errors);
            }
        }
    }

    /// <summary>A node's JSON type as Helm reads values.yaml (YAML 1.2 core schema: quoted scalars are strings).</summary>
    private static string KindOf(YamlNode node) => node switch
    {
        YamlMappingNode => "object",
        YamlSequenceNode => "array",
        YamlScalarNode { Style: ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded } => "string",
        YamlScalarNode { Value: null or "" or "~" or "null" } => "null",
        YamlScalarNode { Value: "true" or "false" } => "boolean",
        YamlScalarNode scalar when IntegerScalar().IsMatch(scalar.Value!) => "integer",
        YamlScalarNode scalar when double.TryParse(scalar.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out _) => "number",
        _ => "string",
    };

    // ---- Dockerfiles ------------------------------------------------------------------------------

    private sealed record Instruction(string Keyword, string Arguments);

    [Theory]
    [MemberData(nameof(AppIds))]
    public void Service_dockerfile_builds_with_the_sdk_runs_on_aspnet_as_non_root_and_exposes_its_ports(string appId)
    {
        var app = AppOf(appId);
        var instructions = File.ReadAllLines(Path.Combine(Root, "services", app.Project, "Dockerfile"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(' ', 2) is [var keyword, var arguments] ? new Instruction(keyword.ToUpperInvariant(), arguments.Trim()) : new Instruction(l.ToUpperInvariant(), ""))
            .ToList();
        var stages = instructions.Select((instruction, index) => (instruction, index)).Where(i => i.instruction.Keyword == "FROM").ToList();
        var final = instructions.Skip(stages[^1].index).ToList();

        Assert.True(stages.Count >= 2, "not multi-stage");
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:10.0 ", stages[0].instruction.Arguments, StringComparison.Ordinal);
        Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:10.0", stages[^1].instruction.Arguments, StringComparison.Ordinal);
        var buildStage = stages[0].instruction.Arguments.Split(' ')[^1];
        Assert.Contains(final, i => i.Keyword == "COPY" && i.Arguments.StartsWith($"--from={buildStage} ", StringComparison.Ordinal));
        Assert.Contains(instructions, i => i.Keyword == "RUN" && i.Arguments.StartsWith($"dotnet publish services/{app.Project}/{app.Project}.csproj ", StringComparison.Ordinal));

        var user = instructions.Last(i => i.Keyword == "USER");
        Assert.Contains(user, final);
        Assert.DoesNotMatch(RootUser(), user.Arguments);
        Assert.DoesNotContain(instructions.SkipWhile(i => i != user).Skip(1), i => i.Keyword == "USER");

        var exposed = final.Where(i => i.Keyword == "EXPOSE").SelectMany(i => i.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.All(PortsOf(app), port => Assert.Contains(Number(port), exposed));
        Assert.Contains(final, i => i.Keyword == "ENV" && i.Arguments.StartsWith("ASPNETCORE_URLS=", StringComparison.Ordinal) && i.Arguments.EndsWith($":{Number(app.Port)}", StringComparison.Ordinal));
        var assembly = XDocument.Load(Path.Combine(Root, "services", app.Project, $"{app.Project}.csproj")).Descendants("AssemblyName").Single().Value;
        Assert.Contains($"\"{assembly}.dll\"", final.Single(i => i.Keyword == "ENTRYPOINT").Arguments, StringComparison.Ordinal);
    }

    [Fact]
    public void Docker_build_context_keeps_what_the_dockerfiles_copy()
    {
        var ignored = File.ReadAllLines(Path.Combine(Root, ".dockerignore")).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        string[] copied = ["services", "global.json", "Directory.Build.props", "Directory.Packages.props", ".editorconfig"];

        Assert.All(copied, path => Assert.DoesNotContain(ignored, pattern => pattern.TrimEnd('/').Equals(path, StringComparison.Ordinal) || pattern.StartsWith(path + "/", StringComparison.Ordinal)));
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
    }

    // ---- components -------------------------------------------------------------------------------

    private sealed record Component(string Source, string Name, string Type, string Version, IReadOnlyList<string> Scopes, Dictionary<object, object> Document);

    private static Component ComponentOf(string source, Dictionary<object, object> document) =>
        new(source, Text(document, "metadata", "name"), Text(document, "spec", "type"), Text(document, "spec", "version"),
            [.. List(document, "scopes").Select(s => s.ToString() ?? "")], document);

    private static List<Component> Components(string folder) =>
        [.. Directory.EnumerateFiles(folder, "*.yaml")
            .Order(StringComparer.Ordinal)
            .SelectMany(f => Documents(File.ReadAllText(f)).Select(d => (f, d)))
            .Where(x => Text(x.d, "kind") == "Component")
            .Select(x => ComponentOf(Path.GetRelativePath(Root, x.f), x.d))];

    /// <summary>The code's type family and apps, and exactly the scopes of the same component in components/.</summary>
    private static void AssertTypedAndScoped(Component component)
    {
        var requirement = DaprComponents.Required.Single(r => r.Name == component.Name);
        var selfHosted = Assert.Single(Components(Path.Combine(Root, "components")), c => c.Name == component.Name);

        Assert.True(component.Type.StartsWith(requirement.TypePrefix, StringComparison.Ordinal),
            $"{component.Source}: {component.Name} has type '{component.Type}', expected {requirement.TypePrefix}*");
        Assert.NotEmpty(component.Version);
        if (component.Type == "state.postgresql")
        {
            // daprd defaults state.postgresql to v1 (docs/architecture.md, 'Dapr facts').
            Assert.Equal("v2", component.Version);
        }

        Assert.All(requirement.Apps, app => Assert.Contains(app, component.Scopes));
        Assert.Equal(selfHosted.Scopes.Order(StringComparer.Ordinal), component.Scopes.Order(StringComparer.Ordinal));
    }

    // ---- YAML -------------------------------------------------------------------------------------

    private static List<Dictionary<object, object>> Documents(string text)
    {
        using var reader = new StringReader(text);
        return YamlDocuments.Read(reader);
    }

    private static Dictionary<object, object> Single(string file) => Assert.Single(Documents(File.ReadAllText(file)));

    private static object? At(object? node, string[] path)
    {
        foreach (var key in path)
        {
            node = node is Dictionary<object, object> map && map.TryGetValue(key, out var value) ? value : null;
        }

        return node;
    }

    private static string Text(object? node, params string[] path) => At(node, path)?.ToString() ?? "";

    private static Dictionary<object, object> Map(object? node, params string[] path) => At(node, path) as Dictionary<object, object> ?? [];

    private static List<object> List(object? node, params string[] path) => At(node, path) as List<object> ?? [];

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static bool DeepEquals(object? left, object? right) => (left, right) switch
    {
        (Dictionary<object, object> l, Dictionary<object, object> r) => l.Count == r.Count && l.All(e => r.TryGetValue(e.Key, out var v) && DeepEquals(e.Value, v)),
        (List<object> l, List<object> r) => l.Count == r.Count && l.Zip(r).All(p => DeepEquals(p.First, p.Second)),
        _ => Equals(left, right),
    };

    [GeneratedRegex(@"^\s*\{\{.*\}\}\s*$")]
    private static partial Regex ActionLine();

    [GeneratedRegex(@"\{\{.*?\}\}")]
    private static partial Regex InlineAction();

    [GeneratedRegex(@"\bhost=([^\s;]+)")]
    private static partial Regex ConnectionHost();

    [GeneratedRegex(@"^\s*package\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex ProtoPackage();

    [GeneratedRegex(@"^\s*service\s+(\w+)\s*\{", RegexOptions.Multiline)]
    private static partial Regex ProtoService();

    [GeneratedRegex(@"^\s*rpc\s+(\w+)\s*\(", RegexOptions.Multiline)]
    private static partial Regex ProtoRpc();

    [GeneratedRegex(@"^[+-]?[0-9]+$")]
    private static partial Regex IntegerScalar();

    [GeneratedRegex(@"^(root|0)(:.*)?$")]
    private static partial Regex RootUser();
}
