package org.cocoonjvm.billing.pricing;

/**
 * The usage a worker reported for one request. Cached tokens are a part of the prompt and
 * reasoning tokens a part of the completion, as in OpenAI's {@code usage} object.
 *
 * <p>The worker's {@code Usage} message carries uint32 values: convert them with
 * {@link Integer#toUnsignedLong}, not a plain widening, or counts above 2^31 turn negative.
 */
public record TokenCounts(long prompt, long cached, long completion, long reasoning) {
    public static final TokenCounts NONE = new TokenCounts(0, 0, 0, 0);

    public TokenCounts {
        if (prompt < 0 || cached < 0 || completion < 0 || reasoning < 0) {
            throw new IllegalArgumentException("token counts must be >= 0, got prompt " + prompt
                    + ", cached " + cached + ", completion " + completion + ", reasoning " + reasoning);
        }
        if (cached > prompt) {
            throw new IllegalArgumentException(
                    "cached tokens " + cached + " exceed prompt tokens " + prompt);
        }
        if (reasoning > completion) {
            throw new IllegalArgumentException(
                    "reasoning tokens " + reasoning + " exceed completion tokens " + completion);
        }
    }
}
