package org.cocoonjvm.worker.model;

/**
 * RoPE frequency scaling from {@code config.json}'s {@code rope_scaling}.
 *
 * @param type                {@code NONE}, {@code LINEAR} or {@code LLAMA3} (ids match {@code ck_rope_scaling})
 * @param factor              LINEAR and LLAMA3
 * @param lowFreqFactor       LLAMA3
 * @param highFreqFactor      LLAMA3
 * @param originalMaxContext  LLAMA3: {@code original_max_position_embeddings}
 */
public record RopeScaling(Type type, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxContext) {
    public static final RopeScaling NONE = new RopeScaling(Type.NONE, 1, 1, 1, 0);

    public enum Type { NONE, LINEAR, LLAMA3 }
}
