package org.cocoonjvm.gateway;

/**
 * How a gateway stops when asked to (SIGTERM).
 *
 * @param drainMs how long the gateway goes on serving (new connections too) while {@code /ready}
 *                answers 503, so that load balancers polling it take it out of rotation before its
 *                port closes; 0 closes the port at once
 * @param graceMs then, how long running streams may go on to finish. Those still running near its
 *                end ({@link #cutMarginMs()} before it) are ended by the gateway: the worker call is
 *                cancelled, what it produced is billed, and the client gets 503 {@code shutting_down}
 *                (an error event, its usage and {@code [DONE]} once streaming), not a cut connection
 */
public record ShutdownOptions(long drainMs, long graceMs) {
    /** Longer than any load balancer takes to notice, and short enough not to hide a stuck stop. */
    public static final long MAX_DRAIN_MS = 300_000;
    /** Past the longest request timeout an operator would set; a stop that waits longer looks stuck. */
    public static final long MAX_GRACE_MS = 3_600_000;
    /**
     * 6 s: most chat replies finish, and a worker's own 5 s drain with the gateway's 1 s to
     * settle and answer fit in the 10 s that orchestrators wait by default before SIGKILL.
     */
    public static final ShutdownOptions DEFAULTS = new ShutdownOptions(0, 6_000);

    public ShutdownOptions {
        if (drainMs < 0 || drainMs > MAX_DRAIN_MS) {
            throw new IllegalArgumentException("drainMs must be between 0 and " + MAX_DRAIN_MS + ", got " + drainMs);
        }
        if (graceMs < 1 || graceMs > MAX_GRACE_MS) {
            throw new IllegalArgumentException("graceMs must be between 1 and " + MAX_GRACE_MS + ", got " + graceMs);
        }
    }

    /**
     * How long before the grace ends the running streams are ended: time for their settlements
     * and final events to go out before the connections are closed. A second, or half a short grace.
     */
    public long cutMarginMs() {
        return Math.min(1_000, graceMs / 2);
    }

    /** The most a stop takes, drain and grace together. */
    public long totalMs() {
        return drainMs + graceMs;
    }
}
