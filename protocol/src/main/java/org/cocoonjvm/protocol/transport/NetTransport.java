package org.cocoonjvm.protocol.transport;

import java.util.Locale;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.transport.Transport;

/**
 * The socket layer a node's Vert.x instance runs on.
 *
 * <p>A streamed token costs the gateway a socket read from the worker and a socket write to the
 * client; with NIO each is a system call of its own. io_uring hands the kernel the writes and reads
 * an event-loop pass has queued, across all its sockets, in one submission. Measured with
 * {@code bench gateway} at 64 streams, the gateway alone switched from NIO to io_uring: less of its
 * event loops' CPU per token, and less added time to first token, in each alternating pair
 * (docs/benchmarks.md). Epoll showed no gain over NIO there, so {@link #AUTO} skips it.
 *
 * <p>io_uring needs Netty 4.2.18 or later (the parent pom imports it over Vert.x's 4.2.9): before,
 * a write still in flight when a connection's output shut down had its memory released to the
 * allocator while the kernel was still reading it, which for pooled buffers can put another
 * connection's bytes on the wire.
 *
 * <p>Kernels before 5.x, and containers whose seccomp profile refuses the io_uring system calls
 * (Docker's default one does), have no io_uring: {@link #AUTO} then runs on NIO, which works
 * everywhere, and an explicit choice that is not available fails at start with the reason.
 */
public enum NetTransport {
    /** io_uring where the kernel allows it, NIO otherwise. */
    AUTO,
    NIO,
    EPOLL,
    IO_URING;

    /**
     * Parses a command-line value: {@code auto}, {@code nio}, {@code epoll} or {@code io_uring}
     * (any case; {@code io-uring} too).
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
        throw new IllegalArgumentException("unknown transport '" + value + "': use auto, nio, epoll or io_uring");
    }

    /**
     * The Vert.x transport this choice runs on here.
     *
     * @throws IllegalStateException an explicit native choice this machine does not offer, with its cause
     */
    public Transport resolve() {
        Transport transport = switch (this) {
            case AUTO -> Transport.IO_URING.available() ? Transport.IO_URING : Transport.NIO;
            case NIO -> Transport.NIO;
            case EPOLL -> Transport.EPOLL;
            case IO_URING -> Transport.IO_URING;
        };
        if (!transport.available()) {
            Throwable cause = transport.unavailabilityCause();
            throw new IllegalStateException("transport " + name().toLowerCase(Locale.ROOT) + " is not available here"
                    + (cause == null ? "" : ": " + cause.getMessage()) + "; use --transport nio or auto", cause);
        }
        return transport;
    }

    /** A Vert.x instance on this transport. */
    public Vertx vertx(VertxOptions options) {
        return Vertx.builder().with(options).withTransport(resolve()).build();
    }

    public Vertx vertx() {
        return vertx(new VertxOptions());
    }
}
