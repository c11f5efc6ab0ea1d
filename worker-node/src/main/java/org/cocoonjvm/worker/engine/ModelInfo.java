package org.cocoonjvm.worker.engine;

/**
 * What a worker serves.
 *
 * @param name       what clients put in {@code "model"}
 * @param hash       hex digest identifying weights and tokenizer exactly
 * @param maxContext prompt plus completion tokens one sequence may hold
 */
public record ModelInfo(String name, String hash, int maxContext) {
    public ModelInfo {
        if (name.isBlank() || hash.isBlank() || maxContext < 2) {
            throw new IllegalArgumentException("invalid model info: " + name + "@" + hash + " ctx " + maxContext);
        }
    }

    /** {@code name@hash}, the identity attestation and billing refer to. */
    public String id() {
        return name + "@" + hash;
    }
}
