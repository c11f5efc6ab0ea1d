package org.cocoonjvm.protocol.transport;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseEncoder;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;
import java.nio.charset.StandardCharsets;

/**
 * One buffer per HTTP/1.1 chunk of a streamed response, instead of three.
 *
 * <p>Netty's response encoder frames each chunk as three messages: the length line, the content
 * and the closing CRLF, each with its own promise joined by a combiner, its own entry in the
 * outbound buffer, and a copy of the heap content into direct memory at the write. A token's SSE
 * event is one chunk of about 230 bytes, so that framing was a quarter of the gateway's event-loop
 * CPU when relaying tokens (a JFR profile at 64 streams). This handler sits just before the encoder,
 * copies a middle chunk's content into one direct buffer already framed, and writes it on past the
 * encoder, whose state between the response head and the last chunk does not change with the
 * chunks it sees. Everything else — the head, the last chunk and its trailers, a response that is
 * not chunked or has no body, a chunk over {@link #MOST_FRAMED} bytes — goes through the encoder
 * as before.
 *
 * <p>Installed per connection like {@link FlushBatching}, through Vert.x's internal
 * {@link ConnectionBase}; a connection without Vert.x's HTTP/1.x encoder (HTTP/2) is left as it is.
 */
public final class ChunkFraming extends ChannelOutboundHandlerAdapter {
    static final String HANDLER_NAME = "cocoon-chunk-framing";
    /** Larger chunks are copied for nothing: the encoder's three-part framing is cheap next to them. */
    static final int MOST_FRAMED = 8192;
    private static final String ENCODER_NAME = "httpEncoder";
    private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
    private static final int CRLF = '\r' << 8 | '\n';

    private final ChannelHandlerContext encoder;
    /** Between the head of a chunked response with a body and its last chunk. */
    private boolean chunked;

    private ChunkFraming(ChannelHandlerContext encoder) {
        this.encoder = encoder;
    }

    /** For {@code HttpServer.connectionHandler}. */
    public static void install(HttpConnection connection) {
        if (!(connection instanceof ConnectionBase base)) {
            return;
        }
        ChannelPipeline pipeline = base.channelHandlerContext().pipeline();
        ChannelHandlerContext encoder = pipeline.context(ENCODER_NAME);
        if (encoder != null && encoder.handler() instanceof HttpResponseEncoder && pipeline.get(HANDLER_NAME) == null) {
            pipeline.addAfter(ENCODER_NAME, HANDLER_NAME, new ChunkFraming(encoder));
        }
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        if (encoder.isRemoved()) {
            // The connection was upgraded (h2c, WebSocket): nothing left to frame for.
            ctx.pipeline().remove(this);
        } else if (msg instanceof HttpResponse head) {
            // A head that is also the last content (a full response) carries its whole body.
            chunked = !(msg instanceof LastHttpContent) && HttpUtil.isTransferEncodingChunked(head) && hasBody(head);
        } else if (msg instanceof LastHttpContent) {
            chunked = false;
        } else if (chunked && msg instanceof HttpContent content) {
            int length = content.content().readableBytes();
            if (length > 0 && length <= MOST_FRAMED) {
                encoder.write(frame(ctx, content, length), promise);
                return;
            }
        }
        ctx.write(msg, promise);
    }

    /** The encoder writes no body for these (RFC 9110 §6.4.1), and so frames none. */
    private static boolean hasBody(HttpResponse head) {
        int code = head.status().code();
        return code >= 200 && code != 204 && code != 304;
    }

    /** {@code <length in hex>\r\n<content>\r\n}, the content released. */
    private static ByteBuf frame(ChannelHandlerContext ctx, HttpContent content, int length) {
        int digits = (32 - Integer.numberOfLeadingZeros(length) + 3) / 4;
        ByteBuf framed = ctx.alloc().ioBuffer(digits + length + 4);
        try {
            for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) {
                framed.writeByte(HEX[length >>> shift & 15]);
            }
            framed.writeShort(CRLF);
            ByteBuf body = content.content();
            framed.writeBytes(body, body.readerIndex(), length);
            framed.writeShort(CRLF);
            return framed;
        } catch (RuntimeException e) {
            framed.release();
            throw e;
        } finally {
            content.release();
        }
    }
}
