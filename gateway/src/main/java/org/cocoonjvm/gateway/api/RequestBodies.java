package org.cocoonjvm.gateway.api;

import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.util.HashMap;
import java.util.Map;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.relay.EventLoopTimers;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.transport.FlushBatching;

/**
 * The steps a POST's body passes on one front's routes, from its head to a parsed body: its
 * deadline, the lingering close of a connection whose body went unread, the bound on bodies
 * awaited per key, its encoding and type, its size. {@link HttpRoutes#router} places them among the
 * other routes, since their order against authentication matters; they live here because they share
 * the request's body state (its deadline timer, its place among the bodies awaited). One per front:
 * the bodies awaited are counted on that front's event loop only.
 */
public final class RequestBodies {
    /** A key's requests whose bodies have not come yet, on this front (see {@link #awaited}). */
    public static final int MOST_BODIES_AWAITED = 256;
    /** How long an answered request's unread body is still taken before its connection closes. */
    static final long LINGER_MS = 2_000;

    private static final String DEADLINE = "cocoon.bodyDeadline";
    private static final String AWAITED = "cocoon.bodyAwaited";

    private final GatewayOptions options;
    private final EventLoopTimers timers;
    private final Map<ApiKey, Integer> awaiting = new HashMap<>();

    RequestBodies(GatewayOptions options, EventLoopTimers timers) {
        this.options = options;
        this.timers = timers;
    }

    /**
     * A POST's body must arrive within {@code bodyTimeoutMs} of its head: 408, and an HTTP/1
     * connection closed (the rest of the body would still be on its way); an HTTP/2 stream ends
     * alone. Cancelled once the body is read, or when the request is answered before (401, 413).
     */
    void deadline(RoutingContext ctx) {
        long limitMs = options.relay().bodyTimeoutMs();
        EventLoopTimers.Timer timer = timers.set(limitMs, due -> {
            // addEndHandler, not the response's endHandler: that one is the access log's (and every
            // other end handler's) way in, and setting it dropped the 408's log line.
            ctx.addEndHandler(v -> {
                if (ctx.request().version() != HttpVersion.HTTP_2) {
                    ctx.request().connection().close();
                }
            });
            RequestNotes.refuse(ctx, new ApiException(ErrorKind.REQUEST_TIMEOUT,
                    "The request body did not arrive within " + limitMs + " ms of its head."));
        });
        ctx.put(DEADLINE, timer);
        ctx.addEndHandler(v -> timer.cancel());
        ctx.next();
    }

    /**
     * An HTTP/1 request answered before its body was read (401, 413, 415…): Vert.x reads and
     * discards the rest of the body to keep the connection, at line rate and with no bound, no key
     * needed (audit T, T-1: 26 GB per connection in 45 s). Such an answer says
     * {@code Connection: close}, and the connection closes {@value #LINGER_MS} ms after it: long
     * enough for the client to read the answer before a reset, as in nginx's lingering close.
     */
    void closeAfterAnUnreadBody(RoutingContext ctx) {
        HttpServerRequest request = ctx.request();
        if (request.version() != HttpVersion.HTTP_2) {
            ctx.addHeadersEndHandler(v -> {
                if (!request.isEnded()) {
                    ctx.response().putHeader(HttpHeaders.CONNECTION, "close");
                }
            });
            ctx.addEndHandler(v -> {
                if (!request.isEnded()) {
                    timers.set(LINGER_MS, due -> request.connection().close());
                }
            });
        }
        ctx.next();
    }

    /**
     * A key's requests whose bodies have not come yet, on one event loop, at most
     * {@value #MOST_BODIES_AWAITED}: each holds its stream's state until its body or its body
     * deadline, before admission counts it against any limit, and HTTP/2 heads cost a client
     * nothing, so four connections held 360,000 of them and 3.3 GB of heap, stalling every other
     * client (audit T, T-5). A client sends a body with its head; only such a flood meets this.
     */
    void awaited(RoutingContext ctx) {
        ApiKey key = ctx.get(CompletionsHandler.API_KEY);
        if (awaiting.getOrDefault(key, 0) >= MOST_BODIES_AWAITED) {
            RequestNotes.refuse(ctx, ApiException.retryLater(ErrorKind.RATE_LIMITED, "This key has " + MOST_BODIES_AWAITED
                    + " requests whose bodies have not come; send each request's body with its head.", 1));
            return;
        }
        awaiting.merge(key, 1, Integer::sum);
        Runnable arrived = new Runnable() {
            private boolean counted = true;

            @Override
            public void run() {
                if (counted) {
                    counted = false;
                    awaiting.computeIfPresent(key, (k, n) -> n == 1 ? null : n - 1);
                }
            }
        };
        ctx.put(AWAITED, arrived);
        ctx.addEndHandler(v -> arrived.run());  // answered, or gone, before its body
        ctx.next();
    }

    /**
     * Bodies are read as sent: one compressed would otherwise fail as "not JSON", which hides
     * what the client has to change.
     */
    static void notEncoded(RoutingContext ctx) {
        String encoding = ctx.request().getHeader(HttpHeaders.CONTENT_ENCODING);
        if (encoding != null && !encoding.isBlank() && !encoding.strip().equalsIgnoreCase("identity")) {
            ctx.response().putHeader(HttpHeaders.ACCEPT_ENCODING, "identity");  // RFC 9110's hint for a 415
            RequestNotes.refuse(ctx, new ApiException(ErrorKind.UNSUPPORTED_ENCODING, "Content-Encoding "
                    + ApiException.shown(encoding) + " is not supported; send the request body uncompressed."));
            return;
        }
        ctx.next();
    }

    /**
     * A body is read as JSON whatever its {@code Content-Type} says (curl's {@code -d} sends a
     * form type). Left as a form type, the body handler would decode it as a form too, and a JSON
     * body of over 1 KB, or with many {@code &}, fails that with a bare 400 before it is read.
     */
    static void readAsJson(RoutingContext ctx) {
        String type = ctx.request().getHeader(HttpHeaders.CONTENT_TYPE);
        if (type != null && (type.regionMatches(true, 0, "application/x-www-form-urlencoded", 0, 33)
                || type.regionMatches(true, 0, "multipart/", 0, 10))) {
            ctx.request().headers().set(HttpHeaders.CONTENT_TYPE, "application/json");
        }
        ctx.next();
    }

    /** Reads the body, up to {@code maxBodyBytes} (413 past it, answered by the router's error handler). */
    BodyHandler reader() {
        return BodyHandler.create(false).setBodyLimit(options.maxBodyBytes());
    }

    /** The body is here: its deadline and its place among the bodies awaited are over. */
    void arrived(RoutingContext ctx) {
        ctx.<EventLoopTimers.Timer>get(DEADLINE).cancel();
        ctx.<Runnable>get(AWAITED).run();
        ctx.next();
    }

    /**
     * The request stream broke while its body was read, for a reason other than its client
     * leaving: Vert.x Web's body handler fails the request with status 200 then (400 for some of
     * the codec's complaints), which reached no error handler and went out as a dropped connection
     * with an ERROR and a stack trace (audit T, T-4: a chunk size that is not one). A 400 as for a
     * malformed head; on HTTP/1 the codec reads nothing more on that connection, so it closes once
     * answered.
     */
    static void unreadable(RoutingContext ctx, Throwable cause) {
        // An HTTP/2 stream's fault is its own: the connection carries other streams, perhaps other
        // clients' behind a proxy, which closing it would cut (review W, W-1).
        boolean http1 = ctx.request().version() != HttpVersion.HTTP_2;
        if (http1) {
            ctx.response().putHeader(HttpHeaders.CONNECTION, "close");
            ctx.addEndHandler(v -> ctx.request().connection().close());
        }
        RequestNotes.refuse(ctx, ApiException.invalid(null, "The request body could not be read"
                + (cause == null || cause.getMessage() == null ? "." : ": " + cause.getMessage())));
        if (http1) {
            FlushBatching.flushNow(ctx.request().connection());  // Vert.x closes the connection before this read ends
        }
    }
}
