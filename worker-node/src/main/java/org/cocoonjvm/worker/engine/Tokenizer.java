package org.cocoonjvm.worker.engine;

import java.util.List;
import org.cocoonjvm.protocol.grpc.ChatMessage;

/** A model's tokenizer and chat template. Thread-safe: requests are tokenized off the engine thread. */
public interface Tokenizer {
    /**
     * Renders the messages with the model's chat template, ready for the assistant's reply.
     *
     * @throws PromptRejected when the model cannot take these messages
     */
    int[] encodeChat(List<ChatMessage> messages);

    int[] encode(String text);

    /** A fresh decoder for one sequence; decoders keep state across tokens (partial UTF-8). */
    Decoder newDecoder();

    boolean isEndOfSequence(int token);

    /** Turns one sequence's tokens into text as they come. */
    interface Decoder {
        /** The text this token completes; may be empty while a multi-byte character is incomplete. */
        String next(int token);
    }
}
