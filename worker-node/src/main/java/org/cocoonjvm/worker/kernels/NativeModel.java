package org.cocoonjvm.worker.kernels;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.cocoonjvm.worker.model.DType;
import org.cocoonjvm.worker.model.ModelConfig;
import org.cocoonjvm.worker.model.ModelWeights;
import org.cocoonjvm.worker.model.Tensor;
import org.cocoonjvm.worker.model.TensorKind;
import org.cocoonjvm.worker.model.Tensors;

/**
 * One {@code ck_model}: weights copied into the kernel library, a KV cache, and one batched step.
 * Like the handle it wraps, it is used by one thread at a time (the engine thread).
 */
public final class NativeModel implements AutoCloseable {
    private final KernelLibrary lib;
    private final ModelConfig config;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment handle;
    private final int maxSeqs;
    private final int maxStepTokens;
    private final int blockTokens;
    private final int kvBlocks;
    // Step buffers, allocated once: no allocation per step.
    private final MemorySegment batch;
    private final MemorySegment entries;
    private final MemorySegment tokens;
    private final MemorySegment outTokens;
    private MemorySegment outLogits = MemorySegment.NULL;
    private boolean closed;

    /**
     * @param threads       CPU threads the library may use inside a step (0: all cores)
     * @param kvBlocks      KV cache size in blocks of {@code blockTokens} tokens
     * @param maxSeqs       sequences the cache can hold at once, and most entries per step
     * @param maxStepTokens most tokens one step may feed, across all entries
     */
    public NativeModel(KernelLibrary lib, ModelWeights weights, int threads, int kvBlocks, int blockTokens,
                       int maxSeqs, int maxStepTokens) {
        this.lib = lib;
        this.config = weights.config();
        this.maxSeqs = maxSeqs;
        this.maxStepTokens = maxStepTokens;
        this.blockTokens = blockTokens;
        this.kvBlocks = kvBlocks;
        MemorySegment out = arena.allocate(ADDRESS);
        check("ck_model_create", call(() -> (int) lib.modelCreate.invokeExact(Abi.config(arena, config), threads, out)), MemorySegment.NULL);
        handle = out.get(ADDRESS, 0);
        try {
            loadTensors(weights);
            check("ck_model_finalize", call(() -> (int) lib.modelFinalize.invokeExact(handle)));
            check("ck_kv_init", call(() -> (int) lib.kvInit.invokeExact(handle, kvBlocks, blockTokens, maxSeqs)));
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        batch = arena.allocate(Abi.BATCH);
        entries = arena.allocate(Abi.SEQ_ENTRY, maxSeqs);
        tokens = arena.allocate(JAVA_INT, maxStepTokens);
        outTokens = arena.allocate(JAVA_INT, maxSeqs);
    }

    private void loadTensors(ModelWeights weights) {
        for (TensorKind kind : TensorKind.values()) {
            if (config.shape(kind) == null) {
                continue;
            }
            for (int layer = 0; layer < (kind.perLayer ? config.layers() : 1); layer++) {
                Tensor t = weights.tensor(kind, layer);
                if (t == null) {
                    throw new IllegalArgumentException("the model lacks " + kind + (kind.perLayer ? " of layer " + layer : ""));
                }
                try (Arena scratch = Arena.ofConfined()) {
                    // The kernels take norms and biases as F32 whatever the file holds.
                    MemorySegment data = kind.isVector() && t.dtype() != DType.F32 ? Tensors.toF32(t, scratch) : t.data();
                    DType dtype = kind.isVector() ? DType.F32 : t.dtype();
                    int l = layer;
                    check("ck_model_set_tensor(" + t.name() + ")", call(() -> (int) lib.modelSetTensor.invokeExact(
                            handle, kind.abiId, l, dtype.abiId, data, data.byteSize())));
                }
            }
        }
    }

    public ModelConfig config() {
        return config;
    }

    public int maxSeqs() {
        return maxSeqs;
    }

    public int maxStepTokens() {
        return maxStepTokens;
    }

    public int blockTokens() {
        return blockTokens;
    }

    public int kvBlocks() {
        return kvBlocks;
    }

    public long peakBytes() {
        return invoke(() -> (long) lib.modelPeakBytes.invokeExact(handle));
    }

    /** Entry {@code i} of the next step; {@code tokenOffset} is where its tokens start. */
    public void entry(int i, int seq, int pos, int[] input, int tokenOffset, boolean sample,
                      float temperature, float topP, int topK, float presence, float frequency, long seed) {
        long base = i * Abi.SEQ_ENTRY.byteSize();
        entries.set(JAVA_INT, base + Abi.ENTRY_SEQ, seq);
        entries.set(JAVA_INT, base + Abi.ENTRY_POS, pos);
        entries.set(JAVA_INT, base + Abi.ENTRY_N_TOKENS, input.length);
        entries.set(JAVA_INT, base + Abi.ENTRY_SAMPLE, sample ? 1 : 0);
        entries.set(JAVA_FLOAT, base + Abi.S_TEMPERATURE, temperature);
        entries.set(JAVA_FLOAT, base + Abi.S_TOP_P, topP);
        entries.set(JAVA_INT, base + Abi.S_TOP_K, topK);
        entries.set(JAVA_FLOAT, base + Abi.S_PRESENCE, presence);
        entries.set(JAVA_FLOAT, base + Abi.S_FREQUENCY, frequency);
        entries.set(JAVA_LONG, base + Abi.S_SEED, seed);
        MemorySegment.copy(input, 0, tokens, JAVA_INT, (long) tokenOffset * Integer.BYTES, input.length);
    }

    /**
     * Runs the entries set since the last step. {@code next[i]} gets entry i's sampled token or -1;
     * {@code logits}, when not null, gets [n][vocab] logits after each entry's last token.
     */
    public void step(int n, int[] next, float[] logits) {
        if (logits != null && outLogits.byteSize() < (long) n * config.vocab() * Float.BYTES) {
            outLogits = arena.allocate(JAVA_FLOAT, (long) maxSeqs * config.vocab());
        }
        batch.set(JAVA_INT, 0, n);
        batch.set(ADDRESS, 8, entries);
        batch.set(ADDRESS, 16, tokens);
        batch.set(ADDRESS, 24, outTokens);
        batch.set(ADDRESS, 32, logits == null ? MemorySegment.NULL : outLogits);
        check("ck_step", call(() -> (int) lib.step.invokeExact(handle, batch)));
        MemorySegment.copy(outTokens, JAVA_INT, 0, next, 0, n);
        if (logits != null) {
            MemorySegment.copy(outLogits, JAVA_FLOAT, 0, logits, 0, n * config.vocab());
        }
    }

    public void free(int seq) {
        check("ck_seq_free", call(() -> (int) lib.seqFree.invokeExact(handle, seq)));
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (handle != null && !handle.equals(MemorySegment.NULL)) {
                try {
                    lib.modelFree.invokeExact(handle);
                } catch (Throwable t) {
                    throw new IllegalStateException(t);
                }
            }
            arena.close();
        }
    }

    private void check(String what, int status) {
        check(what, status, handle);
    }

    private void check(String what, int status, MemorySegment errorHandle) {
        if (status != 0) {
            String detail;
            try {
                MemorySegment message = (MemorySegment) lib.lastError.invokeExact(errorHandle);
                detail = message.reinterpret(4096).getString(0);
            } catch (Throwable t) {
                detail = "(no message)";
            }
            throw new KernelException(what, status, detail);
        }
    }

    /** A downcall: method handles declare Throwable, but ours only ever throw unchecked. */
    private interface Downcall<T> {
        T run() throws Throwable;
    }

    private static <T> T invoke(Downcall<T> call) {
        try {
            return call.run();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static int call(Downcall<Integer> call) {
        return invoke(call);
    }
}
