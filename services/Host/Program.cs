using PersistentAgents.Gateway.Catalog;
using PersistentAgents.Host;

try
{
    await EmbeddedHost.Build(args).RunAsync();
}
catch (CatalogException e)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}

return 0;
