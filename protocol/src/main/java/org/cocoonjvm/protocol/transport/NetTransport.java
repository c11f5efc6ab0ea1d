package org.cocoonjvm.protocol.transport;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.transport.Transport;
import java.util.Locale;

/**
 * The socket layer a node's Vert.x instance runs on: NIO (the default) or io_uring.
 *
 * <p>io_uring hands the kernel the reads and writes an event-loop pass has queued, across all its
 * sockets, in one submission instead of a system call each; a relayed token costs the gateway one
 * read from a worker and one write to a client. Measured with {@code bench gateway} at 64 streams,
 * only the gateway's transport changed, alternating: io_uring took 0.93–0.98× of NIO's event-loop
 * CPU per token (scaled by the direct path's cost in the same run), and its added time to first
 * token was better in some pairs and worse in others (docs/benchmarks.md). On loopback the kernel's
 * TCP work, not the system call, dominates. Too small a gain to make the newer transport the
 * default; it is there for machines where it measures better.
 *
 * <p>io_uring needs Netty 4.2.18 or later (the parent pom imports it over Vert.x's 4.2.9): before,
 * a write still in flight when a connection's output shut down had its memory released to the
 * allocator while the kernel was still reading it, which for pooled buffers can put another
 * connection's bytes on the wire. Kernels before 5.x, and containers whose seccomp profile refuses
 * the io_uring system calls (Docker's default one does), have none: choosing it there fails at
 * start, with the reason.
 */
public enum NetTransport {
    NIO(Transport.NIO),
    IO_URING(Transport.IO_URING);

    private final Transport transport;

    NetTransport(Transport transport) {
        this.transport = transport;
    }

    /**
     * Parses a command-line value: {@code nio} or {@code io_uring} (any case; {@code io-uring} too).
     *
     * @throws IllegalArgumentException naming the accepted values
     */
    public static NetTransport parse(String value) {
        String name = value.trim().toUpperCase(Locale.ROOT).replace('-', '_');
        for (NetTransport t : values()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown transport '" + value + "': use nio or io_uring");
    }

    /** Whether this machine offers it; NIO always does. */
    public boolean available() {
        return transport.available();
    }

    /** @throws IllegalStateException the transport is not available here, with the kernel's reason */
    public NetTransport requireAvailable() {
        if (!transport.available()) {
            Throwable cause = transport.unavailabilityCause();
            throw new IllegalStateException("transport " + transport.name() + " is not available here"
                    + (cause == null ? "" : ": " + cause.getMessage()) + "; use --transport nio", cause);
        }
        return this;
    }

    /**
     * A Vert.x instance on this transport.
     *
     * @throws IllegalStateException the transport is not available here, with the kernel's reason
     */
    public Vertx vertx(VertxOptions options) {
        requireAvailable();
        return Vertx.builder().with(options).withTransport(transport).build();
    }

    public Vertx vertx() {
        return vertx(new VertxOptions());
    }

    @Override
    public String toString() {
        return transport.name();
    }
}
