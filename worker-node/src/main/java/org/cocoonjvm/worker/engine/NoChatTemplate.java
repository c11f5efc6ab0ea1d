package org.cocoonjvm.worker.engine;

/**
 * The model has no chat template, so the worker cannot turn messages into a prompt. The model's
 * files lack it, not the request: another worker of the model (or the same model with a template)
 * can serve the same request, so it is the worker's failure, not the client's.
 */
public final class NoChatTemplate extends RuntimeException {
    public NoChatTemplate() {
        super("This worker's model has no chat template, so it cannot serve chat completions; send a plain prompt "
                + "(/v1/completions) instead.", null, false, false);
    }
}
