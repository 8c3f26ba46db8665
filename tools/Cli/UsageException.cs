namespace PersistentAgents.Cli;

/// <summary>A command line that cannot be run as given: reported like a host's InvalidArgument.</summary>
public sealed class UsageException(string message) : Exception(message);
