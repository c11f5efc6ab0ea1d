package org.cocoonjvm.gateway;

import com.sun.management.UnixOperatingSystemMXBean;
import java.lang.management.ManagementFactory;

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
 * @param mostIdle        connections with no request in flight kept open at most: past it, the
 *                        longest idle closes as another one goes idle. Idle keep-alive connections
 *                        cost a client nothing and the gateway a file descriptor each, so without a
 *                        bound one host could hold them all and new clients hang (audit T, T-2);
 *                        nginx closes keep-alive connections first when it runs short, too.
 */
public record ConnectionOptions(long headerTimeoutMs, long idleTimeoutMs, int mostIdle) {
    /**
     * 10 s for a head: clients send one in a single packet as soon as they connect, so this is
     * ample even over a slow link, and a connection that sends nothing is gone as soon. 75 s idle,
     * as nginx's {@code keepalive_timeout}: above the 60 s idle timeout of common load balancers,
     * so one in front closes a spare connection before the gateway does and never sends a request
     * down a connection being closed.
     */
    public static final ConnectionOptions DEFAULTS = new ConnectionOptions(10_000, 75_000, defaultMostIdle());

    /**
     * A quarter of the process's open-file limit: the rest stays for connections with requests
     * in flight (admission and the keys' limits bound those), the workers' connections, the
     * ledger's and files. 10,000 where the limit cannot be read.
     */
    public static int defaultMostIdle() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof UnixOperatingSystemMXBean unix) {
            return (int) Math.clamp(unix.getMaxFileDescriptorCount() / 4, 64, Integer.MAX_VALUE);
        }
        return 10_000;
    }

    public ConnectionOptions {
        // Vert.x takes the header deadline for a connection whose protocol it does not know yet as an int.
        if (headerTimeoutMs < 1 || headerTimeoutMs > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("headerTimeoutMs must be between 1 and " + Integer.MAX_VALUE + ", got "
                    + headerTimeoutMs);
        }
        if (idleTimeoutMs < 1) {
            throw new IllegalArgumentException("idleTimeoutMs must be positive, got " + idleTimeoutMs);
        }
        if (mostIdle < 1) {
            throw new IllegalArgumentException("mostIdle must be positive, got " + mostIdle);
        }
    }
}
