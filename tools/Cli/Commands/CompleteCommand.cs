using System.ComponentModel;
using Grpc.Core;
using PersistentAgents.Contracts.V1;
using Spectre.Console;
using Spectre.Console.Cli;
using AgentsClient = PersistentAgents.Contracts.V1.Agents.AgentsClient;

namespace PersistentAgents.Cli.Commands;

public sealed class CompleteSettings : AgentSettings
{
    [CommandArgument(1, "<prompt>")]
    [Description("What to ask the agent")]
    public string Prompt { get; init; } = "";

    [CommandOption("-t|--task-type <TYPE>")]
    [Description("Groups interactions for learning, e.g. email_routing. Default: general")]
    public string? TaskType { get; init; }

    [CommandOption("-s|--session <ID>")]
    [Description("Working memory is kept per session. Default: default")]
    public string? Session { get; init; }

    [CommandOption("-p|--policy <POLICY>")]
    [Description("quality-first, balanced, cost-first or λ from 0 to 10. Default: the agent's")]
    public string? Policy { get; init; }

    [CommandOption("--json")]
    [Description("Ask for a JSON reply: only models that can give one are used")]
    public bool Json { get; init; }

    [CommandOption("--stream")]
    [Description("Write the reply as it is generated")]
    public bool Stream { get; init; }

    [CommandOption("--no-cache")]
    [Description("Skip the gateway's response cache")]
    public bool NoCache { get; init; }
}

/// <summary>One prompt to one agent: the reply's text, then what it cost and how it was routed.</summary>
public sealed class CompleteCommand(HostConnection host, IAnsiConsole console) : AsyncCommand<CompleteSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, CompleteSettings settings, CancellationToken cancellationToken)
    {
        var client = host.Agents(settings);
        var request = new CompleteRequest
        {
            Agent = settings.Agent,
            Prompt = settings.Prompt,
            TaskType = settings.TaskType ?? "",
            SessionId = settings.Session ?? "",
            Policy = settings.Policy ?? "",
            ResponseFormat = settings.Json ? "json" : "",
            NoCache = settings.NoCache,
        };

        CompleteReply reply;
        if (settings.Stream)
        {
            reply = await StreamAsync(client, request, cancellationToken);
        }
        else
        {
            reply = await client.CompleteAsync(request, cancellationToken: cancellationToken);
            console.WriteLine(reply.Text);
        }

        console.WriteLine();
        console.Write(ReplyTable.Of(reply));
        return 0;
    }

    private async Task<CompleteReply> StreamAsync(AgentsClient client, CompleteRequest request, CancellationToken cancellationToken)
    {
        using var call = client.CompleteStream(request, cancellationToken: cancellationToken);
        CompleteReply? final = null;
        var wroteText = false;
        try
        {
            await foreach (var item in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                if (item.EventCase == CompleteEvent.EventOneofCase.Delta)
                {
                    console.Write(item.Delta);
                    wroteText = true;
                }
                else
                {
                    final = item.Final;
                }
            }
        }
        finally
        {
            // Ends the streamed text's line, also when the stream breaks, so that the error line is a line of its own.
            if (wroteText)
            {
                console.WriteLine();
            }
        }

        // The contract ends every clean stream with the whole reply; a host that does not is broken, not silent.
        return final ?? throw new InvalidOperationException("the host ended the stream without the final reply");
    }
}
