package org.cocoonjvm.gateway.limits;

/**
 * What one API key may use. {@code 0} in a field means that dimension is not limited.
 *
 * @param requestsPerMinute requests started per minute
 * @param tokensPerMinute   prompt plus completion tokens per minute
 * @param maxConcurrent     requests in flight at once
 */
public record KeyLimits(long requestsPerMinute, long tokensPerMinute, int maxConcurrent) {
    public static final KeyLimits UNLIMITED = new KeyLimits(0, 0, 0);

    public KeyLimits {
        if (requestsPerMinute < 0 || tokensPerMinute < 0 || maxConcurrent < 0) {
            throw new IllegalArgumentException("limits must not be negative: " + this);
        }
    }
}
