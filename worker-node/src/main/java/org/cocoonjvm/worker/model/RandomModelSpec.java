package org.cocoonjvm.worker.model;

import java.util.List;

/**
 * What {@link RandomModel} generates. The first ten components are the essentials; the rest have
 * defaults through {@link #of} and the {@code with…} methods.
 *
 * @param arch        llama, qwen2 (q/k/v biases) or qwen3 (q/k norms, explicit head_dim)
 * @param dtype       weights' format: F32, F16 or BF16 in both formats; Q8_0 only for GGUF matrices
 *                    (the HF copy is then F32, holding the values before quantisation)
 * @param headDim     0 for hidden / heads
 * @param shards      safetensors files the HF copy is split into (with an index when more than one)
 * @param name        general.name in the GGUF
 */
public record RandomModelSpec(String arch, int layers, int hidden, int heads, int kvHeads, int ffn, int vocab, long seed,
                              DType dtype, int maxContext, int headDim, boolean tiedEmbeddings, RopeScaling ropeScaling,
                              int shards, String name) {
    public RandomModelSpec {
        if (!List.of("llama", "qwen2", "qwen3").contains(arch)) {
            throw new IllegalArgumentException("arch must be llama, qwen2 or qwen3: " + arch);
        }
        if (vocab < RandomModel.MIN_VOCAB) {
            throw new IllegalArgumentException("vocab must be at least " + RandomModel.MIN_VOCAB
                    + " (256 byte tokens + 3 special tokens): " + vocab);
        }
        if (shards < 1) {
            throw new IllegalArgumentException("shards must be positive: " + shards);
        }
    }

    public static RandomModelSpec of(String arch, int layers, int hidden, int heads, int kvHeads, int ffn, int vocab,
                                     long seed, DType dtype, int maxContext) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed, dtype, maxContext,
                0, false, RopeScaling.NONE, 1, "random-" + arch);
    }

    /** A very small model: 2 layers, width 64, 4 query / 2 KV heads, FFN 128, vocab 512 (qwen3: head_dim 32). */
    public static RandomModelSpec tiny(String arch) {
        RandomModelSpec s = of(arch, 2, 64, 4, 2, 128, 512, 42, DType.F32, 256);
        return arch.equals("qwen3") ? s.withHeadDim(32) : s;
    }

    public int effectiveHeadDim() {
        // Without heads there is no head_dim: 0, which the model's config then refuses naming heads.
        return headDim > 0 ? headDim : heads > 0 ? hidden / heads : 0;
    }

    public RandomModelSpec withDtype(DType d) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed, d, maxContext, headDim,
                tiedEmbeddings, ropeScaling, shards, name);
    }

    public RandomModelSpec withSeed(long s) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, s, dtype, maxContext, headDim,
                tiedEmbeddings, ropeScaling, shards, name);
    }

    public RandomModelSpec withHeadDim(int h) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed, dtype, maxContext, h,
                tiedEmbeddings, ropeScaling, shards, name);
    }

    public RandomModelSpec withTiedEmbeddings(boolean t) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed, dtype, maxContext, headDim,
                t, ropeScaling, shards, name);
    }

    public RandomModelSpec withRopeScaling(RopeScaling r) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed, dtype, maxContext, headDim,
                tiedEmbeddings, r, shards, name);
    }

    public RandomModelSpec withShards(int n) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed, dtype, maxContext, headDim,
                tiedEmbeddings, ropeScaling, n, name);
    }

    public RandomModelSpec withName(String n) {
        return new RandomModelSpec(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed, dtype, maxContext, headDim,
                tiedEmbeddings, ropeScaling, shards, n);
    }
}
