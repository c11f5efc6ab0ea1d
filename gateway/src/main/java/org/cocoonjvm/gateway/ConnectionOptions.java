package org.cocoonjvm.gateway;

/**
 * How long a client connection may hold the port with no request to show for it. Neither ever
 * cuts a request in flight, however long it is silent: a non-streaming completion or a gRPC call
 * may say nothing for minutes while the model works, and the relay's own {@code timeoutMs}
 * bounds it.
 *
 * @param headerTimeoutMs a request head must be whole within this, however its bytes trickle in: a
 *                        new connection's first, counted from the accept (HTTP/2: its preface, and
 *                        then its first SETTINGS as long again), and a later HTTP/1 one, counted from
 *                        its first byte
 * @param idleTimeoutMs   a connection with no request in flight for this long is closed (HTTP/2
 *                        with a GOAWAY); on HTTP/1, until the next request's first byte
 */
public record ConnectionOptions(long headerTimeoutMs, long idleTimeoutMs) {
    /**
     * 10 s for a head: clients send one in a single packet as soon as they connect, so this is
     * ample even over a slow link, and a connection that sends nothing is gone as soon. 75 s idle,
     * as nginx's {@code keepalive_timeout}: above the 60 s idle timeout of common load balancers,
     * so one in front closes a spare connection before the gateway does and never sends a request
     * down a connection being closed.
     */
    public static final ConnectionOptions DEFAULTS = new ConnectionOptions(10_000, 75_000);

    public ConnectionOptions {
        // Vert.x takes the header deadline for a connection whose protocol it does not know yet as an int.
        if (headerTimeoutMs < 1 || headerTimeoutMs > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("headerTimeoutMs must be between 1 and " + Integer.MAX_VALUE + ", got "
                    + headerTimeoutMs);
        }
        if (idleTimeoutMs < 1) {
            throw new IllegalArgumentException("idleTimeoutMs must be positive, got " + idleTimeoutMs);
        }
    }
}
