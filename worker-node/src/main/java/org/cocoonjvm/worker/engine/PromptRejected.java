package org.cocoonjvm.worker.engine;

/**
 * The model cannot take these messages as a prompt: its chat template refused them
 * ({@code raise_exception}, e.g. a system message to a template without that role), could not
 * or could not render them (a model without a template is {@link NoChatTemplate}). The same request
 * fails the same way on every worker of the model, so it is the client's to change, not a worker failure.
 */
public final class PromptRejected extends RuntimeException {
    private final boolean raisedByTemplate;

    /** @param raisedByTemplate the template refused the messages on purpose ({@code raise_exception}) */
    public PromptRejected(String message, Throwable cause, boolean raisedByTemplate) {
        super(message, cause);
        this.raisedByTemplate = raisedByTemplate;
    }

    /** Whether the template refused on purpose, rather than failing to render. */
    public boolean raisedByTemplate() {
        return raisedByTemplate;
    }
}
