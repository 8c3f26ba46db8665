namespace PersistentAgents.Contracts;

/// <summary>
/// Interaction ids are version 7 GUIDs in 32 hex digits: unique, sortable by time, and carrying the
/// millisecond they were made, which is how an episode's day is found from its id alone.
/// </summary>
public static class InteractionIds
{
    public static string New(DateTimeOffset at) => Guid.CreateVersion7(at).ToString("N");

    public static bool TryGetTimestamp(string id, out DateTimeOffset at)
    {
        at = default;
        if (id.Length != 32 || !Guid.TryParseExact(id, "N", out var guid) || guid.Version != 7)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[16];
        guid.TryWriteBytes(bytes, bigEndian: true, out _);
        long milliseconds = 0;
        for (var i = 0; i < 6; i++)
        {
            milliseconds = (milliseconds << 8) | bytes[i];
        }

        at = DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
        return true;
    }
}
