using PersistentAgents.Contracts;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>
/// Every Dapr component the code names (<see cref="DaprComponents.Required"/>) must be declared in
/// components/ with the right type family and scoped to the apps that use it; every ready alternative in
/// components/alternatives/ must replace one of them and be scoped the same (docs/architecture.md, 'Dapr
/// components' and 'Dapr facts').
/// </summary>
public sealed class ComponentsTests
{
    private static readonly string[] BlobBindingTypes = ["bindings.localstorage", "bindings.aws.s3", "bindings.azure.blobstorage"];
    private static readonly string ComponentsFolder = Path.Combine(RepositoryRoot.Find(), "components");

    private sealed record Component(string File, string Name, string Type, string Version, IReadOnlyList<string> Scopes);

    private static List<Component> Read(string folder) =>
        Directory.EnumerateFiles(folder, "*.yaml", SearchOption.TopDirectoryOnly)
            .Concat(Directory.EnumerateFiles(folder, "*.yml", SearchOption.TopDirectoryOnly))
            .Order(StringComparer.Ordinal)
            .SelectMany(file => Documents(file).Select(doc => (file, doc)))
            .Where(d => Text(d.doc, "kind") == "Component")
            .Select(d => new Component(
                Path.GetRelativePath(ComponentsFolder, d.file),
                Text(Map(d.doc, "metadata"), "name"),
                Text(Map(d.doc, "spec"), "type"),
                Text(Map(d.doc, "spec"), "version"),
                d.doc.TryGetValue("scopes", out var scopes) && scopes is List<object> list ? list.Select(s => s?.ToString() ?? "").ToList() : []))
            .ToList();

    private static List<Dictionary<object, object>> Documents(string file)
    {
        using var reader = new StreamReader(file);
        return YamlDocuments.Read(reader);
    }

    private static Dictionary<object, object> Map(Dictionary<object, object> node, string key) =>
        node.TryGetValue(key, out var value) && value is Dictionary<object, object> map ? map : [];

    private static string Text(Dictionary<object, object> node, string key) =>
        node.TryGetValue(key, out var value) ? value?.ToString() ?? "" : "";

    public static TheoryData<string> RequiredNames => [.. DaprComponents.Required.Select(r => r.Name)];

    [Theory]
    [MemberData(nameof(RequiredNames))]
    public void Each_component_the_code_names_is_declared_typed_and_scoped(string name)
    {
        var requirement = DaprComponents.Required.Single(r => r.Name == name);
        var declared = Read(ComponentsFolder).Where(c => c.Name == name).ToList();

        var component = Assert.Single(declared);
        Assert.True(component.Type.StartsWith(requirement.TypePrefix, StringComparison.Ordinal),
            $"{component.File}: {name} has type '{component.Type}', expected {requirement.TypePrefix}*");
        Assert.False(string.IsNullOrEmpty(component.Version), $"{component.File}: {name} has no spec.version");
        foreach (var app in requirement.Apps)
        {
            Assert.True(component.Scopes.Contains(app), $"{component.File}: {name} is not scoped to '{app}' (scopes: {string.Join(", ", component.Scopes)})");
        }
    }

    [Fact]
    public void Every_top_level_component_is_one_the_code_names_and_is_scoped()
    {
        var components = Read(ComponentsFolder);
        Assert.NotEmpty(components);
        Assert.Equal(components.Count, components.Select(c => c.Name).Distinct().Count());
        Assert.All(components, c =>
        {
            Assert.Contains(c.Name, DaprComponents.Required.Select(r => r.Name));
            Assert.NotEmpty(c.Scopes);
        });
    }

    [Fact]
    public void Every_alternative_replaces_a_named_component_with_the_same_type_family_and_scopes()
    {
        var alternatives = Read(Path.Combine(ComponentsFolder, "alternatives"));
        Assert.NotEmpty(alternatives);
        Assert.All(alternatives, alternative =>
        {
            var requirement = DaprComponents.Required.SingleOrDefault(r => r.Name == alternative.Name);
            Assert.True(requirement is not null, $"{alternative.File}: '{alternative.Name}' is not a component the code names");
            Assert.True(alternative.Type.StartsWith(requirement.TypePrefix, StringComparison.Ordinal),
                $"{alternative.File}: type '{alternative.Type}', expected {requirement.TypePrefix}*");
            Assert.NotEmpty(alternative.Scopes);
            Assert.All(requirement.Apps, app => Assert.Contains(app, alternative.Scopes));
        });
    }

    [Fact]
    public void State_postgresql_components_say_version_v2()
    {
        // daprd defaults state.postgresql to v1 (docs/architecture.md, 'Dapr facts').
        var postgres = Read(ComponentsFolder).Concat(Read(Path.Combine(ComponentsFolder, "alternatives")))
            .Where(c => c.Type == "state.postgresql")
            .ToList();
        Assert.NotEmpty(postgres);
        Assert.All(postgres, c => Assert.True(c.Version == "v2", $"{c.File}: state.postgresql must say version: v2, says '{c.Version}'"));
    }

    [Fact]
    public void The_semantic_and_episodic_defaults_are_the_backends_the_adapters_speak()
    {
        var components = Read(ComponentsFolder).ToDictionary(c => c.Name);
        Assert.Equal("bindings.postgresql", components[DaprComponents.SemanticMemory].Type);
        Assert.Contains(components[DaprComponents.EpisodicMemory].Type, BlobBindingTypes);
    }
}
