using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace PersistentAgents.DaprContract.Tests;

/// <summary>The documents of a YAML stream (separated by <c>---</c>) as plain maps, empty documents left out.</summary>
public static class YamlDocuments
{
    public static List<Dictionary<object, object>> Read(TextReader reader)
    {
        var parser = new Parser(reader);
        var deserializer = new DeserializerBuilder().Build();
        parser.Consume<StreamStart>();
        var documents = new List<Dictionary<object, object>>();
        while (parser.Accept<DocumentStart>(out _))
        {
            if (deserializer.Deserialize<Dictionary<object, object>?>(parser) is { } document)
            {
                documents.Add(document);
            }
        }

        return documents;
    }
}
