package org.cocoonjvm.gateway.relay;

import org.cocoonjvm.protocol.grpc.Usage;

/**
 * The most usage a request's workers may bill it, and be paid for: what its hold was made of. A
 * worker reports its usage, and the gateway bills the client and pays the worker by it; a worker
 * that reports more than it can have used (a modified one, on a gateway without attestation) was
 * believed, billed past the hold and paid for tokens nobody received (audit X, X-1 to X-3).
 *
 * @param promptTokens     the prompt's UTF-8 bytes and the chat template's tokens, as the hold
 *                         counted them, plus {@link #promptSlack}: no tokenizer makes more tokens of text
 *                         than it has bytes, but it may add a few of its own, and a forwarding
 *                         worker's upstream renders a template the gateway was not told of
 * @param completionTokens {@code max_tokens}, or the model's context without it: what the hold covers
 */
public record UsageBound(long promptTokens, long completionTokens) {
    public UsageBound {
        if (promptTokens < 0 || completionTokens < 1) {
            throw new IllegalArgumentException("a usage bound needs prompt >= 0 and completion >= 1 tokens, got "
                    + promptTokens + " and " + completionTokens);
        }
    }

    /**
     * The bound of a request whose hold counted {@code holdPromptTokens} for a prompt of
     * {@code chatMessages} messages (0: a plain prompt) and {@code maxTokens} for its completion.
     *
     * @param templateAnnounced its model's workers announced what their chat template writes
     */
    public static UsageBound of(long holdPromptTokens, int chatMessages, boolean templateAnnounced, long maxTokens) {
        return new UsageBound(holdPromptTokens + promptSlack(chatMessages, templateAnnounced), maxTokens);
    }

    /**
     * What a prompt may come to beyond its bytes and the template tokens the workers announced: a
     * tokenizer's own tokens (BOS and the like) and, for a chat, what a template writes beyond what
     * was announced; a forwarding worker announces nothing (its upstream renders the template),
     * and some models' templates write a default system prompt of hundreds of tokens (review Y, Y-2).
     */
    static long promptSlack(int chatMessages, boolean templateAnnounced) {
        if (chatMessages == 0) {
            return 16;
        }
        return (templateAnnounced ? 64 : 4096) + 8L * chatMessages;
    }

    /**
     * {@code claimed}, each count no higher than this bound allows, the completion no higher than
     * the {@code relayed} tokens the worker sent (the relay's count, and the end-of-sequence token
     * of a sequence that stopped), the cached share within the prompt and the reasoning share
     * within the completion.
     */
    Usage trusted(Usage claimed, long relayed) {
        long prompt = Math.min(Integer.toUnsignedLong(claimed.getPromptTokens()), promptTokens);
        long completion = Math.min(Integer.toUnsignedLong(claimed.getCompletionTokens()), Math.min(relayed, completionTokens));
        long cached = Math.min(Integer.toUnsignedLong(claimed.getCachedTokens()), prompt);
        long reasoning = Math.min(Integer.toUnsignedLong(claimed.getReasoningTokens()), completion);
        if (prompt == Integer.toUnsignedLong(claimed.getPromptTokens())
                && completion == Integer.toUnsignedLong(claimed.getCompletionTokens())
                && cached == Integer.toUnsignedLong(claimed.getCachedTokens())
                && reasoning == Integer.toUnsignedLong(claimed.getReasoningTokens())) {
            return claimed;
        }
        return claimed.toBuilder().setPromptTokens((int) prompt).setCompletionTokens((int) completion)
                .setCachedTokens((int) cached).setReasoningTokens((int) reasoning).build();
    }
}
