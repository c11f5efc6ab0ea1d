package org.cocoonjvm.worker.engine;

/**
 * The model has no chat template, so the worker cannot turn messages into a prompt: it is not a
 * chat model, whichever worker serves it (they share its files), and the client is told so.
 */
public final class NoChatTemplate extends RuntimeException {
    public NoChatTemplate() {
        super("This model has no chat template, so it is not a chat model and cannot serve chat completions; send a "
                + "plain prompt (/v1/completions) instead.", null, false, false);
    }
}
