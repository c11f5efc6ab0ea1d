package org.cocoonjvm.protocol.transport;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;

/**
 * One socket write for everything an event-loop task batch writes to a connection.
 *
 * <p>Vert.x flushes every write made outside a read. Streaming makes many such writes: an engine
 * step ends many sequences at once and each sequence's delta goes down the gateway's HTTP/2
 * connection in a task of its own (64 streams: 64 write system calls a step, and as many reads on
 * the gateway); opening a gRPC stream writes its HEADERS and its DATA frame separately; a
 * completion's last events (usage, {@code [DONE]}, the terminating chunk) are three writes. Netty's
 * {@link FlushConsolidationHandler}, told to consolidate outside reads too, turns the flushes of
 * the tasks the event loop runs in one batch into one, issued once they have run: the same bytes,
 * fewer system calls, and no timer (a flush is never held past the loop's current batch).
 *
 * <p>Vert.x has no option for this; the handler goes into the connection's Netty pipeline just
 * before Vert.x's own handler (after TLS, so records are still sealed per write), through
 * {@link ConnectionBase}, the Vert.x-internal class its TCP connections extend. A connection of
 * any other kind is left as it is.
 */
public final class FlushBatching {
    /** At most this many flushes merge into one write, bounding what one write holds. */
    private static final int MOST_FLUSHES_MERGED = 256;
    static final String HANDLER_NAME = "cocoon-flush-batching";

    private FlushBatching() {}

    /** For {@code HttpServer.connectionHandler} and {@code HttpClientBuilder.withConnectHandler}. */
    public static void install(HttpConnection connection) {
        if (!(connection instanceof ConnectionBase base)) {
            return;
        }
        ChannelHandlerContext vertx = base.channelHandlerContext();
        if (vertx.pipeline().get(HANDLER_NAME) == null) {
            vertx.pipeline().addBefore(vertx.name(), HANDLER_NAME, new FlushConsolidationHandler(MOST_FLUSHES_MERGED, true));
        }
    }

    /**
     * What was written to {@code connection} goes out now, not once the current read is over:
     * for an answer written while Vert.x handles a read that it then ends by closing the
     * connection (a body the codec cannot read), which would drop a write not yet flushed.
     */
    public static void flushNow(HttpConnection connection) {
        if (connection instanceof ConnectionBase base) {
            base.channelHandlerContext().flush();
        }
    }
}
