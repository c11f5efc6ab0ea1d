package org.cocoonjvm.gateway.relay;

import org.cocoonjvm.protocol.grpc.Usage;

/**
 * The most usage a request's workers may bill it, and be paid for: what its hold was made of. A
 * worker reports its usage, and the gateway bills the client and pays the worker by it; a worker
 * that reports more than it can have used (a modified one, on a gateway without attestation) was
 * believed, billed past the hold and paid for tokens nobody received (audit X, X-1 to X-3). An
 * attempt on a worker that announced more than the hold was made of has its bound widened within
 * what the hold's amount covers ({@link Hold#boundFor}).
 *
 * @param promptTokens     the prompt's UTF-8 bytes and the chat template's tokens, as the hold
 *                         counted them, plus {@link #promptSlack}: no tokenizer makes more tokens of text
 *                         than it has bytes, but it may add a few of its own, and a forwarding
 *                         worker's upstream renders a template the gateway was not told of
 * @param completionTokens {@code max_tokens}, or the model's context without it: what the hold covers
 *                         (or, widened, the context of a worker that announced more, as far as the
 *                         hold's amount covers it)
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
     * What a request's hold was made of at admission, from the model's workers registered then:
     * each attempt's bound is made from it for the worker the attempt is sent to.
     *
     * @param promptBytes    the prompt's UTF-8 bytes (roles and contents)
     * @param templateTokens what the chat template writes around its messages, the most its
     *                       model's workers announced (0: none did, or a plain prompt)
     * @param chatMessages   its messages; 0 for a plain prompt
     * @param maxTokens      {@code max_tokens}, or the model's largest context without it
     * @param maxTokensGiven the client set {@code max_tokens}
     */
    public record Hold(long promptBytes, long templateTokens, int chatMessages, long maxTokens, boolean maxTokensGiven) {
        /** The bound of the hold itself: an attempt on a worker that announced no more than it was made of. */
        public UsageBound bound() {
            return of(promptBytes + templateTokens, chatMessages, templateTokens > 0, maxTokens);
        }

        /**
         * The bound of an attempt on a worker that announced a context of {@code context} and
         * {@code workerTemplateTokens} for this request's messages: {@link #bound}, widened to
         * them where they are larger (a worker that registered after admission, which a retry may
         * pick: held to the admission's context, its honest reply was cut off there and it was
         * counted a failure; review Y, Y-4), as far as the hold's amount still covers the widened
         * bound (the amount is priced at the highest worker coefficient, so it covers more tokens
         * than it was made of at the coefficient billed). Never narrower than {@link #bound}. The
         * completion is widened only without {@code max_tokens}, and to the worker's context at
         * most: an honest worker stops there.
         */
        public UsageBound boundFor(long context, long workerTemplateTokens, Covered covered) {
            UsageBound held = bound();
            long prompt = held.promptTokens;
            if (chatMessages > 0 && workerTemplateTokens > templateTokens) {
                long wider = promptBytes + workerTemplateTokens + promptSlack(chatMessages, true);
                if (wider > prompt && covered.covers(wider, held.completionTokens)) {
                    prompt = wider;
                }
            }
            long completion = held.completionTokens;
            if (!maxTokensGiven) {
                // The most in [completion, context] that the amount covers beside the prompt: the
                // amount's cost grows with the tokens, so a binary search finds it.
                long most = Math.max(completion, context);
                while (completion < most) {
                    long mid = completion + (most - completion + 1) / 2;
                    if (covered.covers(prompt, mid)) {
                        completion = mid;
                    } else {
                        most = mid - 1;
                    }
                }
            }
            return prompt == held.promptTokens && completion == held.completionTokens ? held : new UsageBound(prompt, completion);
        }
    }

    /** Whether a request's hold covers a usage of this many prompt and completion tokens, however it is billed. */
    @FunctionalInterface
    public interface Covered {
        boolean covers(long promptTokens, long completionTokens);
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
