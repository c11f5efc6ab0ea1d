package org.cocoonjvm.gateway.relay;

/**
 * @param holdStatusMs    how long a stream's HTTP status waits for the first token before 200 is
 *                        sent with keep-alive comments; failures inside the window are real statuses
 * @param keepAliveMs     the longest a stream stays silent: an SSE comment goes out when no token came for this long
 * @param timeoutMs       a request's whole life; past it the worker call is cancelled
 * @param maxAttempts     workers tried before the first token
 * @param coalesceBytes   text held while the client's socket is full before the worker stream is paused
 * @param bodyTimeoutMs   how long an HTTP request's body may take to arrive after its head: {@code timeoutMs}
 *                        starts only once it has, and a body trickled in would otherwise hold a connection
 *                        and up to the body limit of buffer for as long as its client liked
 * @param stallTimeoutMs  how long a client may read nothing while the gateway holds text for it
 *                        (its socket full), or its response's last write: past it the response is
 *                        dropped and the request ends as if the client had left, so a reader that
 *                        stopped does not hold its worker call and concurrency slot until
 *                        {@code timeoutMs}, nor its connection for ever; as nginx's send_timeout
 * @param flexReservePercent the share of each worker's capacity that {@code flex} requests may not
 *                        take, so that a {@code default} request finds a free batch slot instead of
 *                        waiting for a bulk sequence to end; at least one slot on a worker with
 *                        capacity 2 or more, never its last (see {@code WorkerRegistry#flexRoom}); 0: none
 */
public record RelayOptions(long holdStatusMs, long keepAliveMs, long timeoutMs, int maxAttempts, int coalesceBytes,
                           long bodyTimeoutMs, long stallTimeoutMs, int flexReservePercent) {
    public static final long DEFAULT_BODY_TIMEOUT_MS = 30_000;
    public static final long DEFAULT_STALL_TIMEOUT_MS = 60_000;
    public static final int DEFAULT_FLEX_RESERVE_PERCENT = 25;
    public static final RelayOptions DEFAULTS = new RelayOptions(2_000, 5_000, 600_000, 3, 64 * 1024);

    public RelayOptions {
        if (holdStatusMs < 1 || keepAliveMs < 1 || timeoutMs < 1 || maxAttempts < 1 || coalesceBytes < 1 || bodyTimeoutMs < 1
                || stallTimeoutMs < 1) {
            throw new IllegalArgumentException("relay options must be positive: " + this);
        }
        if (flexReservePercent < 0 || flexReservePercent > 100) {
            throw new IllegalArgumentException("flexReservePercent must be between 0 and 100, got " + flexReservePercent);
        }
    }

    /** With the default flex reserve. */
    public RelayOptions(long holdStatusMs, long keepAliveMs, long timeoutMs, int maxAttempts, int coalesceBytes,
                        long bodyTimeoutMs, long stallTimeoutMs) {
        this(holdStatusMs, keepAliveMs, timeoutMs, maxAttempts, coalesceBytes, bodyTimeoutMs, stallTimeoutMs,
                DEFAULT_FLEX_RESERVE_PERCENT);
    }

    /** With the default body and stall timeouts and flex reserve. */
    public RelayOptions(long holdStatusMs, long keepAliveMs, long timeoutMs, int maxAttempts, int coalesceBytes) {
        this(holdStatusMs, keepAliveMs, timeoutMs, maxAttempts, coalesceBytes, DEFAULT_BODY_TIMEOUT_MS, DEFAULT_STALL_TIMEOUT_MS);
    }
}
