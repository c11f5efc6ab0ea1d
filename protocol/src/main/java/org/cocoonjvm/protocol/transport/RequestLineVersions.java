package org.cocoonjvm.protocol.transport;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpRequestDecoder;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;

/**
 * The version of an HTTP/1 request line, settled before Vert.x reads it.
 *
 * <p>Netty's codec takes any {@code NAME/major.minor}; Vert.x serves HTTP/1.0 and HTTP/1.1 and
 * answers every other version itself with a bare 501 whose status line repeats the client's
 * version ({@code FOO/1.1 501}), no body, no request id, no count, no log line (audit T, T-8).
 * Here, as RFC 9110 §2.5 asks, a later HTTP/1 minor version ({@code HTTP/1.2}) is served as
 * HTTP/1.1, the highest this server conforms to; any other version is marked a decoding failure
 * ({@link Unsupported}), which the server's invalid-request handler answers with a 505
 * {@code http_version_not_supported} over HTTP/1.1 (RFC 9110 §15.6.6): the gateway's front and the
 * worker's own HTTP endpoint alike.
 *
 * <p>Installed per connection through Vert.x's internal {@link ConnectionBase}, just before
 * Vert.x's own handler; an HTTP/2 connection has no request decoder and is left as it is. Not
 * right after the decoder: on a plaintext port Vert.x calls the connection handler once the
 * first request is decoded (its h2c handler must see whether it asks for an upgrade), and hands
 * that request on only after the handler returned, from a point past the decoder.
 */
public final class RequestLineVersions extends ChannelInboundHandlerAdapter {
    static final String HANDLER_NAME = "cocoon-request-line-versions";
    private static final String DECODER_NAME = "httpDecoder";

    /** A request line whose version this server does not serve: the version as the client wrote it. */
    public static final class Unsupported extends RuntimeException {
        Unsupported(HttpVersion version) {
            super(version.text(), null, false, false);
        }

        /** The answer: 505 {@code http_version_not_supported}, naming the version. */
        public ApiException toApiException() {
            return new ApiException(ErrorKind.HTTP_VERSION_NOT_SUPPORTED, "The request line's version "
                    + ApiException.shown(getMessage()) + " is not served here; send HTTP/1.1, or HTTP/2.");
        }
    }

    private RequestLineVersions() {}

    /** For {@code HttpServer.connectionHandler}. */
    public static void install(HttpConnection connection) {
        if (!(connection instanceof ConnectionBase base)) {
            return;
        }
        ChannelHandlerContext vertx = base.channelHandlerContext();
        ChannelPipeline pipeline = vertx.pipeline();
        if (pipeline.get(DECODER_NAME) instanceof HttpRequestDecoder && pipeline.get(HANDLER_NAME) == null) {
            pipeline.addBefore(vertx.name(), HANDLER_NAME, new RequestLineVersions());
        }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof HttpRequest request && request.decoderResult().isSuccess()) {
            HttpVersion version = request.protocolVersion();
            if (!version.equals(HttpVersion.HTTP_1_1) && !version.equals(HttpVersion.HTTP_1_0)) {
                // Either way the answer goes out as HTTP/1.1, with its keep-alive rules.
                request.setProtocolVersion(HttpVersion.HTTP_1_1);
                if (!(version.protocolName().equals("HTTP") && version.majorVersion() == 1 && version.minorVersion() > 1)) {
                    request.setDecoderResult(DecoderResult.failure(new Unsupported(version)));
                }
            }
        }
        ctx.fireChannelRead(msg);
    }
}
