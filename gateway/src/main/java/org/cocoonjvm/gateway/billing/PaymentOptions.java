package org.cocoonjvm.gateway.billing;

/**
 * How the gateway pays its workers over payment channels.
 *
 * @param enabled           false: workers get no channel and are not paid (development only)
 * @param everyTokens       K: a new state after this many tokens on a worker's channel (1: per token),
 *                          rounds of states at least 5 ms apart
 * @param everyMs           T: and at least this often while fees are unpaid
 * @param depositCapNanoton the most one channel pays out before it must be closed and reopened; on
 *                          chain, what a new channel is funded with (one open already is capped
 *                          by what its contract holds)
 */
public record PaymentOptions(boolean enabled, int everyTokens, long everyMs, long depositCapNanoton) {
    /** K = 32, T = 200 ms, 10 TON per channel. */
    public static final PaymentOptions DEFAULTS = new PaymentOptions(true, 32, 200, 10_000_000_000L);
    public static final PaymentOptions DISABLED = new PaymentOptions(false, 32, 200, 10_000_000_000L);

    public PaymentOptions {
        if (everyTokens < 1 || everyMs < 1 || depositCapNanoton < 0) {
            throw new IllegalArgumentException("payments need everyTokens >= 1, everyMs >= 1 and depositCapNanoton >= 0, got "
                    + everyTokens + ", " + everyMs + ", " + depositCapNanoton);
        }
    }
}
