package org.cocoonjvm.worker.engine;

/** The model's chat template cannot render even a plain conversation: every chat request would fail. */
public final class BrokenChatTemplate extends RuntimeException {
    public BrokenChatTemplate(String conversation, PromptRejected cause) {
        super("the model's chat template cannot render a sample conversation (" + conversation + "): "
                + cause.getMessage(), cause);
    }
}
