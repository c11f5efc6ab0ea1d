package org.cocoonjvm.worker.model;

import org.cocoonjvm.worker.engine.ModelInfo;

/**
 * A model ready to hand to an engine: its weights (memory-mapped), tokenizer and identity.
 * Closing it unmaps the weights and frees the tokenizer's native memory.
 *
 * @param name   the directory's name for Hugging Face, {@code general.name} (else the file name) for GGUF
 * @param hash   the full {@link ModelHash} (64 hex digits)
 * @param format where it came from
 */
public record LoadedModel(String name, String hash, ModelConfig config, ModelWeights weights, HfTokenizer tokenizer,
                          ModelFormat format) implements AutoCloseable {
    /** {@code name@hash} with the full hash. */
    public String id() {
        return name + "@" + hash;
    }

    /** {@code name@} the first 16 bytes of the hash, for logs and display. */
    public String displayId() {
        return name + "@" + hash.substring(0, 32);
    }

    /** What the engine reports: name, full hash and context window. */
    public ModelInfo info() {
        return new ModelInfo(name, hash, config.maxContext());
    }

    @Override
    public void close() {
        try {
            weights.close();
        } finally {
            tokenizer.close();
        }
    }
}
