using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Threading.Channels;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;

namespace PersistentAgents.Embeddings;

/// <summary>
/// all-MiniLM-L6-v2 in this process, one per model cache directory so every embedder on it shares one ONNX
/// session (about 90 MB) and one queue. Callers tokenise on their own threads and queue the word pieces; a single
/// worker takes whatever is waiting, up to <see cref="MaxBatchSize"/> texts, and runs them as one padded batch,
/// so several agents' turns at once cost one model run rather than one each.
/// </summary>
internal sealed class MiniLmRuntime
{
    public const int MaxBatchSize = 32;

    private static readonly ConcurrentDictionary<string, Lazy<MiniLmRuntime>> s_byCacheDirectory = new(StringComparer.Ordinal);
    private static readonly string[] s_inputNames = ["input_ids", "attention_mask", "token_type_ids"];
    private static readonly string[] s_outputNames = ["last_hidden_state"];

    private readonly Lazy<BertTokenizer> _tokenizer;
    private readonly Lazy<InferenceSession> _session;
    private readonly Channel<QueuedText> _queue = Channel.CreateUnbounded<QueuedText>(new UnboundedChannelOptions { SingleReader = true });

    private MiniLmRuntime(string cacheDirectory)
    {
        _tokenizer = new Lazy<BertTokenizer>(CreateTokenizer);
        // Only the worker reads it; a failed load (a full disk, say) is not remembered, so the next batch tries again.
        _session = new Lazy<InferenceSession>(() => LoadSession(cacheDirectory), LazyThreadSafetyMode.PublicationOnly);
        _ = Task.Run(ProcessQueueAsync);
    }

    public static MiniLmRuntime For(string cacheDirectory) =>
        s_byCacheDirectory.GetOrAdd(Path.GetFullPath(cacheDirectory), directory => new Lazy<MiniLmRuntime>(() => new MiniLmRuntime(directory))).Value;

    /// <summary>
    /// The text's word pieces with [CLS] and [SEP], cut to <see cref="MiniLmEmbedder.MaxWordPieces"/>: the model has
    /// no position embeddings past that.
    /// </summary>
    public TokenizedText Tokenize(string text)
    {
        var prepared = MiniLmText.Normalize(text);
        var ids = _tokenizer.Value.EncodeToIds(
            prepared, MiniLmEmbedder.MaxWordPieces, addSpecialTokens: true, out var tokenizerText, out var charsConsumed);
        var truncated = ids.Count == MiniLmEmbedder.MaxWordPieces && charsConsumed < (tokenizerText ?? prepared).Length;
        return new TokenizedText(ids, truncated);
    }

    /// <summary>The unit-length mean-pooled embedding of one tokenised text, computed in the next batch.</summary>
    public Task<float[]> EmbedAsync(IReadOnlyList<int> tokenIds, CancellationToken cancellationToken)
    {
        var queued = new QueuedText(tokenIds, cancellationToken);
        if (!_queue.Writer.TryWrite(queued))
        {
            throw new InvalidOperationException("The MiniLM queue is closed.");
        }

        return queued.Result.Task;
    }

    private static BertTokenizer CreateTokenizer()
    {
        using var vocabulary = MiniLmModelFiles.ReadVocabulary();
        return BertTokenizer.Create(vocabulary, new BertOptions { LowerCaseBeforeTokenization = true });
    }

    private static InferenceSession LoadSession(string cacheDirectory)
    {
        // From the file rather than a byte array: no managed copy of the model next to ONNX Runtime's own.
        var modelPath = MiniLmModelFiles.EnsureCachedModel(cacheDirectory);
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        return new InferenceSession(modelPath, options);
    }

    private async Task ProcessQueueAsync()
    {
        var batch = new List<QueuedText>(MaxBatchSize);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < MaxBatchSize && _queue.Reader.TryRead(out var queued))
            {
                if (queued.Cancellation.IsCancellationRequested)
                {
                    queued.Result.TrySetCanceled(queued.Cancellation);
                }
                else
                {
                    batch.Add(queued);
                }
            }

            if (batch.Count > 0)
            {
                RunBatch(batch);
                batch.Clear();
            }
        }
    }

    private void RunBatch(List<QueuedText> batch)
    {
        try
        {
            var vectors = Embed(_session.Value, batch);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Result.TrySetResult(vectors[i]);
            }
        }
        catch (Exception e)
        {
            // Whatever failed (writing or loading the model, running it) is each waiting caller's error; the worker goes on.
            foreach (var queued in batch)
            {
                queued.Result.TrySetException(e);
            }
        }
    }

    private static float[][] Embed(InferenceSession session, List<QueuedText> batch)
    {
        var rows = batch.Count;
        var width = batch.Max(q => q.TokenIds.Count);
        var tokenIds = new long[rows * width];
        var attentionMask = new long[rows * width];
        for (var row = 0; row < rows; row++)
        {
            var ids = batch[row].TokenIds;
            for (var position = 0; position < ids.Count; position++)
            {
                tokenIds[(row * width) + position] = ids[position];
                attentionMask[(row * width) + position] = 1;
            }
        }

        long[] shape = [rows, width];
        using var tokenIdsValue = OrtValue.CreateTensorValueFromMemory(tokenIds, shape);
        using var attentionMaskValue = OrtValue.CreateTensorValueFromMemory(attentionMask, shape);
        using var tokenTypesValue = OrtValue.CreateTensorValueFromMemory(new long[rows * width], shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, s_inputNames, [tokenIdsValue, attentionMaskValue, tokenTypesValue], s_outputNames);
        var hidden = outputs[0].GetTensorDataAsSpan<float>();

        // Mean over the text's own positions (the attention mask), not the padding, then unit length.
        var vectors = new float[rows][];
        for (var row = 0; row < rows; row++)
        {
            var length = batch[row].TokenIds.Count;
            var vector = new float[MiniLmEmbedder.Dimensions];
            for (var position = 0; position < length; position++)
            {
                TensorPrimitives.Add(vector, hidden.Slice(((row * width) + position) * MiniLmEmbedder.Dimensions, MiniLmEmbedder.Dimensions), vector);
            }

            TensorPrimitives.Divide(vector, length, vector);
            var norm = TensorPrimitives.Norm(vector);
            if (norm > 0)
            {
                TensorPrimitives.Divide(vector, norm, vector);
            }

            vectors[row] = vector;
        }

        return vectors;
    }

    private sealed class QueuedText(IReadOnlyList<int> tokenIds, CancellationToken cancellation)
    {
        public IReadOnlyList<int> TokenIds { get; } = tokenIds;

        public CancellationToken Cancellation { get; } = cancellation;

        public TaskCompletionSource<float[]> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>A text as MiniLM's word piece ids, and whether it was cut to fit.</summary>
internal readonly record struct TokenizedText(IReadOnlyList<int> TokenIds, bool Truncated);
