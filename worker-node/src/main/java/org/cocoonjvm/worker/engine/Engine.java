package org.cocoonjvm.worker.engine;

import java.util.List;

/**
 * Runs a model one batched step at a time. The {@link org.cocoonjvm.worker.scheduler.Scheduler}
 * is its only caller and calls it from one thread, so implementations need no locking: they own
 * the weights and the KV cache outright.
 *
 * <p>Implementations: {@link SyntheticEngine} (deterministic fake tokens, for gateway and load
 * tests only) and the native kernel library (C/CUDA through FFM).
 */
public interface Engine extends AutoCloseable {
    /** Written to {@code next[i]} for a slot that was a prefill chunk and not the prompt's end. */
    int NO_TOKEN = -1;

    ModelInfo model();

    /** Shown in status and registration, e.g. {@code synthetic} or {@code native-cuda}. */
    String kind();

    /** The most sequences one step may carry. */
    int maxBatch();

    /** The most tokens one step may feed, all sequences together (prefill chunks count in full). */
    default int maxStepTokens() {
        return Integer.MAX_VALUE;
    }

    /**
     * The KV cache, in blocks: the scheduler admits a sequence only when the blocks its longest
     * possible run needs are free, so a step never runs out of cache midway.
     */
    default KvBudget kvBudget() {
        return KvBudget.UNLIMITED;
    }

    /** @param blocks cache blocks in all; @param blockTokens tokens one block holds */
    record KvBudget(int blocks, int blockTokens) {
        public static final KvBudget UNLIMITED = new KvBudget(Integer.MAX_VALUE, 1);

        /** Blocks a sequence of {@code tokens} tokens holds. */
        public int blocksFor(int tokens) {
            return (tokens + blockTokens - 1) / blockTokens;
        }
    }

    Tokenizer tokenizer();

    /**
     * One forward pass over every slot: each consumes its input tokens (a prefill chunk or the
     * previous sampled token) and, when {@link Slot#sample()} is set, samples the next token into
     * {@code next[i]}; otherwise {@code next[i]} is {@link #NO_TOKEN}. An engine that waits
     * within a step stops waiting when its thread is interrupted: the scheduler does so once a
     * shutdown's grace is over.
     */
    void step(List<Slot> slots, int[] next);

    /** Frees a sequence's KV cache. Called once per sequence that took part in a step. */
    void release(long sequenceId);

    @Override
    void close();
}
