package org.cocoonjvm.worker.engine;

import org.cocoonjvm.protocol.hello.HelloLimits;

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

    /**
     * The context a worker announces in its Hello, and so the most a gateway holds and bounds a
     * request without {@code max_tokens} by: one past what gateways take is announced as the most
     * they take ({@link HelloLimits#MAX_CONTEXT}), as no request can use more.
     */
    public int announcedContext() {
        return (int) Math.min(maxContext, HelloLimits.MAX_CONTEXT);
    }

    /** {@code name@hash}, the identity attestation and billing refer to. */
    public String id() {
        return name + "@" + hash;
    }
}
