package org.cocoonjvm.protocol.transport;

import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;

/**
 * Drops a connection at once, with what is queued for its peer. Vert.x's own {@code close()}
 * first flushes what is queued, so a peer that stopped reading would keep its connection, and
 * every buffer on the way, for as long as it liked; a reset (SO_LINGER 0) frees the kernel's
 * buffers too. Reaches the Netty channel through {@link ConnectionBase}, as {@link FlushBatching}
 * does; a connection of any other kind is closed the Vert.x way.
 */
public final class Abort {
    private Abort() {}

    public static void connection(HttpConnection connection) {
        if (!(connection instanceof ConnectionBase base)) {
            connection.close();
            return;
        }
        Channel channel = base.channel();
        channel.config().setOption(ChannelOption.SO_LINGER, 0);
        channel.close();
    }
}
