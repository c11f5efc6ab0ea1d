package org.cocoonjvm.worker.kernels;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.VarHandle;
import org.cocoonjvm.worker.model.ModelConfig;

/** The structs of cocoon_kernels.h, laid out field for field (C's natural alignment on x86-64). */
final class Abi {
    private Abi() {}

    static final StructLayout CONFIG = MemoryLayout.structLayout(
            JAVA_INT.withName("n_layers"), JAVA_INT.withName("hidden"), JAVA_INT.withName("n_heads"),
            JAVA_INT.withName("n_kv_heads"), JAVA_INT.withName("head_dim"), JAVA_INT.withName("ffn_hidden"),
            JAVA_INT.withName("vocab"), JAVA_INT.withName("max_context"),
            JAVA_FLOAT.withName("rms_eps"), JAVA_FLOAT.withName("rope_theta"), JAVA_INT.withName("rope_scaling"),
            JAVA_FLOAT.withName("rope_factor"), JAVA_FLOAT.withName("rope_low_freq_factor"),
            JAVA_FLOAT.withName("rope_high_freq_factor"), JAVA_INT.withName("rope_original_context"),
            JAVA_INT.withName("tied_embeddings"), JAVA_INT.withName("qk_norm"), JAVA_INT.withName("attn_bias"));

    static final StructLayout SAMPLING = MemoryLayout.structLayout(
            JAVA_FLOAT.withName("temperature"), JAVA_FLOAT.withName("top_p"), JAVA_INT.withName("top_k"),
            JAVA_FLOAT.withName("presence_penalty"), JAVA_FLOAT.withName("frequency_penalty"),
            MemoryLayout.paddingLayout(4), JAVA_LONG.withName("seed"));

    static final StructLayout SEQ_ENTRY = MemoryLayout.structLayout(
            JAVA_INT.withName("seq"), JAVA_INT.withName("pos"), JAVA_INT.withName("n_tokens"), JAVA_INT.withName("sample"),
            SAMPLING.withName("sampling"));

    static final StructLayout BATCH = MemoryLayout.structLayout(
            JAVA_INT.withName("n_entries"), MemoryLayout.paddingLayout(4), ADDRESS.withName("entries"),
            ADDRESS.withName("tokens"), ADDRESS.withName("out_tokens"), ADDRESS.withName("out_logits"));

    static final long ENTRY_SEQ = SEQ_ENTRY.byteOffset(MemoryLayout.PathElement.groupElement("seq"));
    static final long ENTRY_POS = SEQ_ENTRY.byteOffset(MemoryLayout.PathElement.groupElement("pos"));
    static final long ENTRY_N_TOKENS = SEQ_ENTRY.byteOffset(MemoryLayout.PathElement.groupElement("n_tokens"));
    static final long ENTRY_SAMPLE = SEQ_ENTRY.byteOffset(MemoryLayout.PathElement.groupElement("sample"));
    static final long SAMPLING_AT = SEQ_ENTRY.byteOffset(MemoryLayout.PathElement.groupElement("sampling"));
    static final long S_TEMPERATURE = SAMPLING_AT + SAMPLING.byteOffset(MemoryLayout.PathElement.groupElement("temperature"));
    static final long S_TOP_P = SAMPLING_AT + SAMPLING.byteOffset(MemoryLayout.PathElement.groupElement("top_p"));
    static final long S_TOP_K = SAMPLING_AT + SAMPLING.byteOffset(MemoryLayout.PathElement.groupElement("top_k"));
    static final long S_PRESENCE = SAMPLING_AT + SAMPLING.byteOffset(MemoryLayout.PathElement.groupElement("presence_penalty"));
    static final long S_FREQUENCY = SAMPLING_AT + SAMPLING.byteOffset(MemoryLayout.PathElement.groupElement("frequency_penalty"));
    static final long S_SEED = SAMPLING_AT + SAMPLING.byteOffset(MemoryLayout.PathElement.groupElement("seed"));

    static MemorySegment config(Arena arena, ModelConfig c) {
        MemorySegment s = arena.allocate(CONFIG);
        set(s, "n_layers", c.layers());
        set(s, "hidden", c.hidden());
        set(s, "n_heads", c.heads());
        set(s, "n_kv_heads", c.kvHeads());
        set(s, "head_dim", c.headDim());
        set(s, "ffn_hidden", c.ffnHidden());
        set(s, "vocab", c.vocab());
        set(s, "max_context", c.maxContext());
        setF(s, "rms_eps", (float) c.rmsEps());
        setF(s, "rope_theta", (float) c.ropeTheta());
        set(s, "rope_scaling", c.ropeScaling().type().ordinal());
        setF(s, "rope_factor", (float) c.ropeScaling().factor());
        setF(s, "rope_low_freq_factor", (float) c.ropeScaling().lowFreqFactor());
        setF(s, "rope_high_freq_factor", (float) c.ropeScaling().highFreqFactor());
        set(s, "rope_original_context", c.ropeScaling().originalMaxContext());
        set(s, "tied_embeddings", c.tiedEmbeddings() ? 1 : 0);
        set(s, "qk_norm", c.qkNorm() ? 1 : 0);
        set(s, "attn_bias", c.attentionBias() ? 1 : 0);
        return s;
    }

    private static void set(MemorySegment s, String field, int value) {
        VarHandle h = CONFIG.varHandle(MemoryLayout.PathElement.groupElement(field));
        h.set(s, 0L, value);
    }

    private static void setF(MemorySegment s, String field, float value) {
        VarHandle h = CONFIG.varHandle(MemoryLayout.PathElement.groupElement(field));
        h.set(s, 0L, value);
    }
}
