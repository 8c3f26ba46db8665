using PersistentAgents.Cli;
using Spectre.Console;

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, press) =>
{
    // Ends the call in flight (a stream, a simulation) instead of killing the process, so it can say so.
    press.Cancel = true;
    cancellation.Cancel();
};

// The error line goes to stderr, so that a script that pipes the tables does not read it as one.
var errors = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
return await CliApp.RunAsync(args, AnsiConsole.Console, errors: errors, cancellationToken: cancellation.Token);
