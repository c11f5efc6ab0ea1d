package org.cocoonjvm.worker.model;

import java.util.List;

/**
 * A decoder-only transformer of the Llama / Qwen2 / Qwen3 family, as read from {@code config.json}
 * or GGUF metadata. Mirrors {@code ck_config} in cocoon_kernels.h.
 *
 * @param architecture   {@code llama}, {@code qwen2} or {@code qwen3}
 * @param headDim        usually hidden / heads; Qwen3 sets it explicitly
 * @param tiedEmbeddings the output projection is the token embedding
 * @param qkNorm         RMSNorm on each query and key head before RoPE (Qwen3)
 * @param attentionBias  q/k/v projections have biases (Qwen2)
 * @param bosToken       prepended by the tokenizer when the model wants it; -1 when none
 * @param eosTokens      any of these ends a sequence
 */
public record ModelConfig(String architecture, int layers, int hidden, int heads, int kvHeads, int headDim,
                          int ffnHidden, int vocab, int maxContext, double rmsEps, double ropeTheta,
                          RopeScaling ropeScaling, boolean tiedEmbeddings, boolean qkNorm, boolean attentionBias,
                          int bosToken, List<Integer> eosTokens) {
    public ModelConfig {
        if (!List.of("llama", "qwen2", "qwen3").contains(architecture)) {
            throw new IllegalArgumentException("unsupported architecture '" + architecture + "' (llama, qwen2, qwen3)");
        }
        if (layers < 1 || hidden < 1 || heads < 1 || kvHeads < 1 || headDim < 2 || headDim % 2 != 0
                || ffnHidden < 1 || vocab < 2 || maxContext < 2) {
            // The fields are not assigned yet here: name the parameters, or every value reads 0.
            throw new IllegalArgumentException("model dimensions must be positive, head_dim even and at least 2, "
                    + "vocab and max_context at least 2: layers " + layers + ", hidden " + hidden + ", heads " + heads
                    + ", kv_heads " + kvHeads + ", head_dim " + headDim + ", ffn " + ffnHidden + ", vocab " + vocab
                    + ", max_context " + maxContext);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads (" + heads + ") must be a multiple of kv_heads (" + kvHeads + ")");
        }
        eosTokens = List.copyOf(eosTokens);
    }

    /** Whether {@code id} has a row in the embedding: the kernels fail a whole step on any other. */
    public boolean hasToken(int id) {
        return id >= 0 && id < vocab;
    }

    /**
     * Checks that every id the tokenizer can produce, and the bos and eos ids, are tokens of this
     * model, so that a mismatched tokenizer stops the load instead of the first request's step.
     *
     * @param tokenizerFile names the tokenizer's ids in the failure, e.g. {@code tokenizer.json}
     * @param configFile    names the model's vocabulary and bos/eos ids, e.g. {@code config.json}
     */
    public void checkTokenizer(HfTokenizer tokenizer, String tokenizerFile, String configFile) {
        if (tokenizer.idLimit() > vocab) {
            throw new ModelFormatException(tokenizerFile + " has ids up to " + (tokenizer.idLimit() - 1) + " but "
                    + configFile + " vocab_size is " + vocab);
        }
        if (bosToken >= 0 && !hasToken(bosToken)) {
            throw new ModelFormatException(configFile + " bos_token_id " + bosToken + " is outside vocab_size " + vocab);
        }
        for (int eos : eosTokens) {
            if (!hasToken(eos)) {
                throw new ModelFormatException(configFile + " eos_token_id " + eos + " is outside vocab_size " + vocab);
            }
        }
    }

    public int qDim() {
        return heads * headDim;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    /** The shape a tensor must have, outermost first; null when this model has no such tensor. */
    public long[] shape(TensorKind kind) {
        return switch (kind) {
            case TOKEN_EMBD -> new long[] {vocab, hidden};
            case OUTPUT -> tiedEmbeddings ? null : new long[] {vocab, hidden};
            case OUTPUT_NORM, ATTN_NORM, FFN_NORM -> new long[] {hidden};
            case WQ -> new long[] {qDim(), hidden};
            case WK, WV -> new long[] {kvDim(), hidden};
            case WO -> new long[] {hidden, qDim()};
            case BQ -> attentionBias ? new long[] {qDim()} : null;
            case BK, BV -> attentionBias ? new long[] {kvDim()} : null;
            case Q_NORM, K_NORM -> qkNorm ? new long[] {headDim} : null;
            case W_GATE, W_UP -> new long[] {ffnHidden, hidden};
            case W_DOWN -> new long[] {hidden, ffnHidden};
        };
    }
}
