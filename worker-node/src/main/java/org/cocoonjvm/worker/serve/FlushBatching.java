package org.cocoonjvm.worker.serve;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;

/**
 * One socket write for all the deltas an engine step sends down a gateway's HTTP/2 connection.
 *
 * <p>A gateway multiplexes all its streams to this worker over one or a few connections, and a
 * step ends many of them at once: each sequence's {@code OutputMailbox} then writes its delta in a
 * task of its own, and Vert.x flushes every write outside a read, so 64 streams cost 64 write
 * system calls per step here and as many reads on the gateway. Netty's
 * {@link FlushConsolidationHandler}, told to consolidate outside reads too, turns the flushes of
 * the tasks queued on the event loop into one, issued once they have run: the same bytes, one
 * write, no timer (the first flush is never held past the loop's current batch of tasks).
 *
 * <p>Vert.x has no option for this; the handler goes into the connection's Netty pipeline, just
 * before Vert.x's HTTP/2 handler (after TLS, so records are still sealed per write), through
 * {@link ConnectionBase}, the Vert.x-internal class its connections extend. A connection of any
 * other kind is left as it is. HTTP/1.x connections (a client per connection) gain nothing.
 */
final class FlushBatching {
    /** At most this many flushes merge into one write, bounding what one write holds. */
    private static final int MOST_FLUSHES_MERGED = 256;

    private FlushBatching() {}

    static void install(HttpConnection connection) {
        if (!(connection instanceof ConnectionBase base) || !(base.channelHandlerContext().handler() instanceof Http2ConnectionHandler)) {
            return;
        }
        ChannelHandlerContext http2 = base.channelHandlerContext();
        http2.pipeline().addBefore(http2.name(), "cocoon-flush-batching", new FlushConsolidationHandler(MOST_FLUSHES_MERGED, true));
    }
}
