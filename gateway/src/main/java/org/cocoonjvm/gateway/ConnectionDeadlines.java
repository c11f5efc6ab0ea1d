package org.cocoonjvm.gateway;

import io.micrometer.core.instrument.Counter;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.impl.ConnectionBase;
import java.util.LinkedHashSet;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes a client connection that holds the port without a request to show for it
 * ({@link ConnectionOptions}): one whose request head is not whole in time, however its bytes
 * trickle in, and one with no request in flight for the idle timeout. A request in flight is never
 * cut here, however long it is silent, which is why Vert.x's idle timeout, counting the socket's
 * silence, is not used for this.
 *
 * <p>A request is in flight on HTTP/1 from its decoded head until its response's last content is
 * written, counted, since a pipelining client may have a second head read while the first is
 * answered; on HTTP/2 while any stream is active (a gRPC call is one stream, however long), as
 * Netty's connection counts them. One handler per connection, in its Netty pipeline before Vert.x's
 * own, so that it sees HTTP/1's decoded messages; it lives on the connection's event loop, as does
 * its one timer.
 */
final class ConnectionDeadlines extends ChannelDuplexHandler implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(ConnectionDeadlines.class);
    private static final String HANDLER_NAME = "cocoon-connection-deadlines";

    private enum Phase {
        /** A request head is on its way, or due on a new connection: the header timeout runs. */
        HEAD,
        /** Requests in flight: no deadline. */
        BUSY,
        /** Nothing in flight, and on HTTP/1 no byte of a next request yet: the idle timeout runs. */
        IDLE
    }

    /** Where the closes are counted, by which deadline passed, or for a newer idle connection. */
    record Closes(Counter headerTimeouts, Counter idleTimeouts, Counter idleEvictions) {}

    /**
     * One front's connections with no request in flight, longest idle first, at most {@code most}:
     * one more going idle closes the longest idle ({@link ConnectionOptions#mostIdle}, split over
     * the fronts). Its event loop's, as are its connections.
     */
    static final class Idle {
        private final int most;
        private final LinkedHashSet<ConnectionDeadlines> connections = new LinkedHashSet<>();

        Idle(int most) {
            this.most = most;
        }

        private void entered(ConnectionDeadlines connection) {
            connections.add(connection);
            if (connections.size() > most) {
                ConnectionDeadlines longest = connections.removeFirst();
                longest.close(longest.closes.idleEvictions(), "the longest idle of more than " + most + " idle connections");
            }
        }

        private void left(ConnectionDeadlines connection) {
            connections.remove(connection);
        }
    }

    private final ConnectionOptions limits;
    private final Closes closes;
    private final Idle idle;
    /** The connection's HTTP/2 handler (Vert.x's own), and its streams; null for HTTP/1. */
    private final Http2ConnectionHandler h2;
    private final Http2Connection http2;
    private ChannelHandlerContext ctx;
    /** Where {@link #h2} sits, for the resets it sends. */
    private ChannelHandlerContext h2Context;
    private Phase phase;
    private ScheduledFuture<?> deadline;
    /** HTTP/1 requests whose head came and whose response has not ended. */
    private int requests;
    /** The decoder passed something on in the read now ending. */
    private boolean decodedInRead;

    private ConnectionDeadlines(ConnectionOptions limits, Closes closes, Idle idle, Http2ConnectionHandler h2) {
        this.limits = limits;
        this.closes = closes;
        this.idle = idle;
        this.h2 = h2;
        this.http2 = h2 == null ? null : h2.connection();
    }

    /**
     * The header timeout for a connection whose protocol Vert.x does not know yet. On a plaintext
     * port it calls the connection handler, and so {@link #install}, only once it knows: after the
     * whole first request head for HTTP/1 (it must see whether the head asks for an h2c upgrade),
     * after the preface and first SETTINGS for HTTP/2. Until then its own idle handler is the only
     * timer on the connection, so it gets the header timeout as a write-idle timeout: the gateway
     * writes nothing before it knows the protocol (HTTP/2's server preface, sent once the client's
     * has come, restarts it once), so bytes trickled in do not extend it.
     */
    static HttpServerOptions beforeInstall(HttpServerOptions server, ConnectionOptions limits) {
        return server.setWriteIdleTimeout((int) limits.headerTimeoutMs()).setIdleTimeoutUnit(TimeUnit.MILLISECONDS);
    }

    /**
     * For {@code HttpServer.connectionHandler}, on a server configured with {@link #beforeInstall},
     * whose idle handler this replaces. Vert.x calls it once per connection: an h2c upgrade can
     * only be a connection's first request, so the connection is HTTP/2 by then.
     */
    static void install(HttpConnection connection, ConnectionOptions limits, Closes closes, Idle idle) {
        ChannelHandlerContext vertx = ((ConnectionBase) connection).channelHandlerContext();
        Http2ConnectionHandler h2 = vertx.handler() instanceof Http2ConnectionHandler handler ? handler : null;
        vertx.pipeline().remove(IdleStateHandler.class);
        vertx.pipeline().addBefore(vertx.name(), HANDLER_NAME, new ConnectionDeadlines(limits, closes, idle, h2));
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
        if (http2 == null) {
            enter(Phase.HEAD);
            return;
        }
        h2Context = ctx.pipeline().context(h2);
        http2.addListener(new Http2ConnectionAdapter() {
            @Override
            public void onStreamActive(Http2Stream stream) {
                enter(Phase.BUSY);
            }

            /**
             * Answered while the client's side is still open (a 401 or 408 before the body, or a
             * client that never ends its request): the request is over, so the stream is reset
             * with NO_ERROR, as RFC 9113 §8.1 provides. Left open it would count as in flight for
             * as long as the client liked.
             */
            @Override
            public void onStreamHalfClosed(Http2Stream stream) {
                if (stream.state() == Http2Stream.State.HALF_CLOSED_LOCAL) {
                    h2.resetStream(h2Context, stream.id(), Http2Error.NO_ERROR.code(), h2Context.newPromise());
                    h2Context.flush();
                }
            }

            @Override
            public void onStreamClosed(Http2Stream stream) {
                if (http2.numActiveStreams() == 0) {
                    enter(Phase.IDLE);
                }
            }
        });
        // An h2c upgrade's request is a stream already.
        enter(http2.numActiveStreams() > 0 ? Phase.BUSY : Phase.IDLE);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        decodedInRead = true;
        if (msg instanceof HttpRequest) {
            requests++;
            enter(Phase.BUSY);
        }
        ctx.fireChannelRead(msg);
    }

    /**
     * The HTTP/1 decoder passes nothing on until a head is whole, but every read ends here: a read
     * it made nothing of, while nothing is in flight, brought the next head's first bytes, and the
     * head has the header timeout from them. A read that also ended a request leaves that to the next.
     */
    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        if (phase == Phase.IDLE && http2 == null && !decodedInRead) {
            enter(Phase.HEAD);
        }
        decodedInRead = false;
        ctx.fireChannelReadComplete();
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        if (endsResponse(msg) && --requests == 0) {
            enter(Phase.IDLE);
        }
        ctx.write(msg, promise);
    }

    /** A 100 Continue is a whole message too, but its request goes on. */
    private static boolean endsResponse(Object msg) {
        return msg instanceof LastHttpContent
                && !(msg instanceof HttpResponse head && head.status().codeClass() == HttpStatusClass.INFORMATIONAL);
    }

    private void enter(Phase next) {
        phase = next;
        if (deadline != null) {
            deadline.cancel(false);
            deadline = null;
        }
        if (next != Phase.BUSY) {
            long ms = next == Phase.HEAD ? limits.headerTimeoutMs() : limits.idleTimeoutMs();
            deadline = ctx.executor().schedule(this, ms, TimeUnit.MILLISECONDS);
        }
        if (next == Phase.IDLE) {
            idle.entered(this);
        } else {
            idle.left(this);
        }
    }

    /** The deadline passed. */
    @Override
    public void run() {
        deadline = null;
        idle.left(this);
        if (phase == Phase.HEAD) {
            close(closes.headerTimeouts(), "no whole request head within " + limits.headerTimeoutMs() + " ms");
        } else {
            close(closes.idleTimeouts(), "no request for " + limits.idleTimeoutMs() + " ms");
        }
    }

    private void close(Counter counted, String why) {
        if (deadline != null) {
            deadline.cancel(false);
            deadline = null;
        }
        counted.increment();
        if (log.isDebugEnabled()) {
            log.debug("closing {}: {}", ctx.channel().remoteAddress(), why);
        }
        // From the pipeline's tail, through HTTP/2's handler, which sends GOAWAY first.
        ctx.channel().close();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        idle.left(this);
        if (deadline != null) {
            deadline.cancel(false);
        }
    }
}
