package org.cocoonjvm.worker.engine;

/**
 * The model cannot take these messages as a prompt: its chat template refused them
 * ({@code raise_exception}, e.g. a system message to a template without that role), could not
 * render them, or the model has no template. The same request fails the same way on every worker
 * of the model, so it is the client's to change, not a worker failure.
 */
public final class PromptRejected extends RuntimeException {
    public PromptRejected(String message, Throwable cause) {
        super(message, cause);
    }
}
