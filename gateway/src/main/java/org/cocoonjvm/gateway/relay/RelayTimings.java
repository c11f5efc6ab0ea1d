package org.cocoonjvm.gateway.relay;

import java.util.concurrent.TimeUnit;

/**
 * When one relay's events happened, and the latencies its {@link RequestOutcome} reports. Owned by
 * the relay's event loop, as the relay is.
 *
 * <p>One clock, {@link System#nanoTime}: the one the request's arrival was read on, and the one
 * Vert.x's timers run on. These are latencies only; what changes a worker's state (its breaker,
 * its silence) is timed by the registry's own clock, through the registry.
 */
final class RelayTimings {
    private final long arrivalNanos;
    private long attemptNanos;
    private long queueNanos = -1;
    /** From arrival until the first worker call was written. */
    private long forwardNanos = -1;
    private boolean firstToken;
    private long firstTokenNanos;
    /** The gateway's own time on the first token: from its arrival from the worker until it was handed to the client. */
    private long firstTokenRelayNanos = -1;
    private long lastTokenNanos;
    private long lastKeepAliveNanos;
    private long cancelSentNanos;
    private long cancelNanos = -1;

    /** @param arrivalNanos when the gateway had the request: its head, before the body */
    RelayTimings(long arrivalNanos) {
        this.arrivalNanos = arrivalNanos;
        this.lastKeepAliveNanos = arrivalNanos;
    }

    static long now() {
        return System.nanoTime();
    }

    void attemptStarted() {
        attemptNanos = now();
    }

    /** A worker call was written; only the first counts, retries are the worker side's time. */
    void forwarded() {
        if (forwardNanos < 0) {
            forwardNanos = now() - arrivalNanos;
        }
    }

    /** The worker took the request off its queue. */
    void accepted() {
        queueNanos = now() - attemptNanos;
    }

    boolean firstTokenSeen() {
        return firstToken;
    }

    void firstToken(long now) {
        firstToken = true;
        firstTokenNanos = now;
        lastTokenNanos = now;
    }

    /** The first token, which arrived at {@code arrivedNanos}, was handed to the client. */
    void firstTokenRelayed(long arrivedNanos) {
        firstTokenRelayNanos = now() - arrivedNanos;
    }

    /** @return the gap since the token before */
    long token(long now) {
        long gap = now - lastTokenNanos;
        lastTokenNanos = now;
        return gap;
    }

    /** From the first token to the last: what a worker's speed is measured over. */
    long generatingNanos() {
        return lastTokenNanos - firstTokenNanos;
    }

    void keptAlive(long now) {
        lastKeepAliveNanos = now;
    }

    /** How long the client's stream has had neither a token nor a keep-alive. */
    long quietNanos(long now) {
        long last = firstToken && lastTokenNanos - lastKeepAliveNanos > 0 ? lastTokenNanos : lastKeepAliveNanos;
        return now - last;
    }

    void cancelSent() {
        cancelSentNanos = now();
    }

    long sinceCancelMs() {
        return TimeUnit.NANOSECONDS.toMillis(now() - cancelSentNanos);
    }

    /** The cancelled worker's final count came. */
    void cancelAnswered() {
        cancelNanos = now() - cancelSentNanos;
    }

    /** For the outcome: from routing to the worker admitting the sequence; -1 if it never did. */
    long queueNanos() {
        return queueNanos;
    }

    /** For the outcome: from arrival until the first token was handed to the client; -1 if none was. */
    long timeToFirstTokenNanos() {
        return firstToken ? firstTokenNanos - arrivalNanos + Math.max(0, firstTokenRelayNanos) : -1;
    }

    /** For the outcome: the gateway's own share of {@link #timeToFirstTokenNanos}; -1 if no token was passed on. */
    long overheadNanos() {
        return firstTokenRelayNanos < 0 ? -1 : forwardNanos + firstTokenRelayNanos;
    }

    long totalNanos(long endNanos) {
        return endNanos - arrivalNanos;
    }

    /** For the outcome: from the cancel to the worker's final count; -1 when none was cancelled or it sent none. */
    long cancelNanos() {
        return cancelNanos;
    }
}
