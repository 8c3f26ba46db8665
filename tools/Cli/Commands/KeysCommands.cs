using System.ComponentModel;
using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PersistentAgents.Cli.Commands;

public sealed class CreateKeySettings : HostSettings
{
    [CommandArgument(0, "<tenant>")]
    [Description("The tenant the key acts in: 1-64 of a-z 0-9 - _")]
    public string Tenant { get; init; } = "";

    [CommandOption("--name <NAME>")]
    [Description("What the key is for, shown in listings")]
    public string Name { get; init; } = "";

    [CommandOption("--scope <SCOPE>")]
    [Description("user (default) or admin")]
    public string Scope { get; init; } = "";

    [CommandOption("--requests-per-minute <N>")]
    [Description("The key's rate limit; default: the host's")]
    public int RequestsPerMinute { get; init; }
}

/// <summary>Creates a key and shows its secret, the only time it is shown.</summary>
public sealed class CreateKeyCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<CreateKeySettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, CreateKeySettings settings, CancellationToken cancellationToken)
    {
        var created = await host.ApiKeys(settings).CreateApiKeyAsync(
            new CreateApiKeyRequest { Tenant = settings.Tenant, Name = settings.Name, Scope = settings.Scope, RequestsPerMinute = settings.RequestsPerMinute },
            cancellationToken: cancellationToken);
        console.MarkupLine($"[bold]{Markup.Escape(created.Info.Id)}[/]: {Markup.Escape(created.Info.Scope)} key of tenant [bold]{Markup.Escape(created.Info.Tenant)}[/]");
        console.WriteLine(created.Key);
        console.MarkupLine("[yellow]Keep the key now: the host stores only its hash and cannot show it again.[/]");
        return 0;
    }
}

public sealed class ListKeysSettings : HostSettings
{
    [CommandOption("--tenant <TENANT>")]
    [Description("Only this tenant's keys")]
    public string Tenant { get; init; } = "";
}

/// <summary>Every key (never a secret): id, tenant, scope, prefix, limit, created and revoked times.</summary>
public sealed class ListKeysCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<ListKeysSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ListKeysSettings settings, CancellationToken cancellationToken)
    {
        var list = await host.ApiKeys(settings).ListApiKeysAsync(new ListApiKeysRequest { Tenant = settings.Tenant }, cancellationToken: cancellationToken);
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("Id").AddColumn("Tenant").AddColumn("Scope").AddColumn("Name").AddColumn("Prefix")
            .AddColumn(new TableColumn("Per minute").RightAligned()).AddColumn("Created").AddColumn("Revoked");
        foreach (var key in list.Keys)
        {
            table.AddRow(
                Markup.Escape(key.Id), Markup.Escape(key.Tenant), Markup.Escape(key.Scope), Markup.Escape(key.Name), Markup.Escape(key.Prefix + "…"),
                key.RequestsPerMinute == 0 ? "default" : key.RequestsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Formats.Time(key.CreatedAt), key.RevokedAt is null ? "" : $"[red]{Formats.Time(key.RevokedAt)}[/]");
        }

        console.Write(table);
        return 0;
    }
}

public sealed class RevokeKeySettings : HostSettings
{
    [CommandArgument(0, "<id>")]
    [Description("The key's id, as listed")]
    public string Id { get; init; } = "";
}

/// <summary>Revokes a key: the host refuses it from the next request on.</summary>
public sealed class RevokeKeyCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<RevokeKeySettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, RevokeKeySettings settings, CancellationToken cancellationToken)
    {
        var revoked = await host.ApiKeys(settings).RevokeApiKeyAsync(new RevokeApiKeyRequest { Id = settings.Id }, cancellationToken: cancellationToken);
        console.MarkupLine($"[bold]{Markup.Escape(revoked.Id)}[/] of tenant {Markup.Escape(revoked.Tenant)} revoked at {Formats.Time(revoked.RevokedAt)}");
        return 0;
    }
}
