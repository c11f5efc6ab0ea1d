package org.cocoonjvm.worker.engine;

import java.util.List;
import org.cocoonjvm.protocol.grpc.ChatMessage;

/** A model's tokenizer and chat template. Thread-safe: requests are tokenized off the engine thread. */
public interface Tokenizer {
    /**
     * Renders the messages with the model's chat template, ready for the assistant's reply.
     *
     * @throws PromptRejected when the model cannot take these messages
     * @throws NoChatTemplate  when the model has no chat template
     */
    int[] encodeChat(List<ChatMessage> messages);

    /**
     * Renders a system + user and a user-only conversation as chat requests would, so that a
     * template that cannot render any chat stops the worker at start instead of failing every
     * request. A template's deliberate {@code raise_exception} for the system message passes:
     * some models have no system role.
     *
     * @throws BrokenChatTemplate when either conversation fails otherwise
     * @throws NoChatTemplate     when the model has no chat template
     */
    default void checkChat() {
        ChatMessage system = ChatMessage.newBuilder().setRole("system").setContent("You are a helpful assistant.").build();
        ChatMessage user = ChatMessage.newBuilder().setRole("user").setContent("Hello!").build();
        try {
            encodeChat(List.of(system, user));
        } catch (PromptRejected e) {
            if (!e.raisedByTemplate()) {
                throw new BrokenChatTemplate("a system and a user message", e);
            }
        }
        try {
            encodeChat(List.of(user));
        } catch (PromptRejected e) {
            throw new BrokenChatTemplate("a user message", e);
        }
    }

    /**
     * What the chat template adds around messages, measured on empty ones: one user message, and
     * the mean of two more (an assistant's and a user's, so that templates that insist on turns
     * render it). Zeros for a model without a chat template, or one that refuses empty messages:
     * the gateway's hold then counts the messages' bytes alone.
     */
    default ChatOverhead chatOverhead() {
        ChatMessage user = ChatMessage.newBuilder().setRole("user").build();
        ChatMessage assistant = ChatMessage.newBuilder().setRole("assistant").build();
        try {
            int one = encodeChat(List.of(user)).length;
            int three = encodeChat(List.of(user, assistant, user)).length;
            return new ChatOverhead(one, Math.max(0, (three - one + 1) / 2));
        } catch (RuntimeException e) {
            // No template, or one that refuses empty messages (or them in this order): a broken
            // one is for checkChat to report at start, not for this estimate.
            return ChatOverhead.NONE;
        }
    }

    /** Tokens a chat template adds: around the first message, and around each one after it. */
    record ChatOverhead(int templateTokens, int messageTokens) {
        public static final ChatOverhead NONE = new ChatOverhead(0, 0);
    }

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
