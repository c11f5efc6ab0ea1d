package org.cocoonjvm.worker.kernels;

/**
 * @param threads       CPU threads inside a step; 0 uses every core
 * @param maxBatch      sequences per step (and KV slots)
 * @param kvTokens      KV cache size in tokens, all sequences together
 * @param blockTokens   tokens per KV block, the unit of allocation
 * @param maxStepTokens tokens one step may feed (decode tokens plus prefill chunks)
 */
public record NativeEngineOptions(int threads, int maxBatch, int kvTokens, int blockTokens, int maxStepTokens) {
    public static final NativeEngineOptions DEFAULTS = new NativeEngineOptions(0, 32, 32_768, 16, 2048);

    public NativeEngineOptions {
        if (threads < 0 || maxBatch < 1 || blockTokens < 1 || kvTokens < blockTokens || maxStepTokens < maxBatch) {
            // The fields are not assigned yet here: name the parameters, or every value reads 0.
            throw new IllegalArgumentException("invalid native engine options: threads " + threads + " (0 or more), max_batch "
                    + maxBatch + " (1 or more), kv_tokens " + kvTokens + " (at least block_tokens), block_tokens "
                    + blockTokens + " (1 or more), max_step_tokens " + maxStepTokens + " (at least max_batch)");
        }
    }
}
