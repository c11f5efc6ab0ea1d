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
 *                (an error event, its usage and {@code [DONE]} once streaming), not a cut connection.
 *                Through the grace the port stays open for {@code /metrics}, {@code /health} and
 *                {@code /ready} (503) only, every other request refused 503 {@code shutting_down}, until
 *                the last running request has been recorded in the metrics (or the grace is over)
 * @param metricsLingerMs then, how long the port stays open like that for a scrape to read the final
 *                counts: until the first scrape after the last request was recorded, at most this
 *                long; 0 closes the port as soon as the last request was recorded
 */
public record ShutdownOptions(long drainMs, long graceMs, long metricsLingerMs) {
    /** Longer than any load balancer takes to notice, and short enough not to hide a stuck stop. */
    public static final long MAX_DRAIN_MS = 300_000;
    /** Past the longest request timeout an operator would set; a stop that waits longer looks stuck. */
    public static final long MAX_GRACE_MS = 3_600_000;
    /**
     * 6 s: most chat replies finish, and a worker's own 5 s drain with the gateway's 1 s to
     * settle and answer fit in the 10 s that orchestrators wait by default before SIGKILL.
     */
    public static final ShutdownOptions DEFAULTS = new ShutdownOptions(0, 6_000, 0);
    /** A scrape interval of minutes is rare; a stop that waits longer for one looks stuck. */
    public static final long MAX_METRICS_LINGER_MS = 300_000;

    public ShutdownOptions {
        if (drainMs < 0 || drainMs > MAX_DRAIN_MS) {
            throw new IllegalArgumentException("drainMs must be between 0 and " + MAX_DRAIN_MS + ", got " + drainMs);
        }
        if (graceMs < 1 || graceMs > MAX_GRACE_MS) {
            throw new IllegalArgumentException("graceMs must be between 1 and " + MAX_GRACE_MS + ", got " + graceMs);
        }
        if (metricsLingerMs < 0 || metricsLingerMs > MAX_METRICS_LINGER_MS) {
            throw new IllegalArgumentException("metricsLingerMs must be between 0 and " + MAX_METRICS_LINGER_MS + ", got "
                    + metricsLingerMs);
        }
    }

    /** No linger for the metrics after the grace. */
    public ShutdownOptions(long drainMs, long graceMs) {
        this(drainMs, graceMs, 0);
    }

    /**
     * How long before the grace ends the running streams are ended: time for their settlements
     * and final events to go out before the connections are closed. A second, or half a short grace.
     */
    public long cutMarginMs() {
        return Math.min(1_000, graceMs / 2);
    }

    /** The most a stop takes: drain, grace and the metrics' linger together. */
    public long totalMs() {
        return drainMs + graceMs + metricsLingerMs;
    }
}
