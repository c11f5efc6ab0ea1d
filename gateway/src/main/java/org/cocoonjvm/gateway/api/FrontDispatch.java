package org.cocoonjvm.gateway.api;

import io.netty.handler.codec.PrematureChannelClosureException;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.grpc.server.GrpcServer;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.metrics.GatewayMetrics;
import org.cocoonjvm.gateway.relay.AccessLog;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.transport.RequestLineVersions;

/**
 * What a front's port does with a request before any route sees it: gRPC to the gRPC server, the
 * rest to the HTTP {@link HttpRoutes#router}, and refused here what neither could answer well (a
 * request Netty could not read, an HTTP/1 head that frames or names its target ambiguously, gRPC
 * over HTTP/1, anything but a probe once a stopping gateway's drain is over). Apart from the routes
 * because none of this has a {@code RoutingContext}: each refusal builds the request id, count and
 * access-log line a routed one gets.
 */
public final class FrontDispatch {
    /** The HTTP/2 error code that tells a client its stream was not processed, so that it may send it again elsewhere. */
    private static final long REFUSED_STREAM = 0x7;

    private final GatewayOptions options;
    private final GatewayMetrics metrics;
    private final AccessLog accessLog;
    /**
     * True once a stopping gateway's drain is over: its port stays open for the probes and scrapes
     * only, until its running requests are recorded in the metrics (audit V, V-2), and every other
     * request is refused.
     */
    private final BooleanSupplier probesOnly;

    public FrontDispatch(GatewayOptions options, GatewayMetrics metrics, AccessLog accessLog, BooleanSupplier probesOnly) {
        this.options = options;
        this.metrics = metrics;
        this.accessLog = accessLog;
        this.probesOnly = probesOnly;
    }

    /**
     * Every request on a front's port: gRPC to {@code grpc}, the rest to {@code http}, and what
     * neither could answer well refused here.
     */
    public Handler<HttpServerRequest> dispatch(GrpcServer grpc, Router http) {
        return request -> {
            if (probesOnly.getAsBoolean() && !isProbe(request)) {
                refuseStopping(request);
            } else if (request.version() == HttpVersion.HTTP_1_1 && request.authority() == null) {
                // Vert.x Web refuses it with an ERROR stack trace in the log: a client's mistake, a 400 here.
                // Only HTTP/1.1 requires Host: HTTP/1.0 health checks (HAProxy's httpchk) send none
                // and are routed as any other request, which Vert.x Web allows (audit K, K-8).
                refuse(request, request.method().name(), request.path(), ApiException.invalid(null,
                        "The request has no Host header, which HTTP/1.1 requires."));
            } else if (request.version() != HttpVersion.HTTP_2 && request.headers().getAll(HttpHeaders.HOST).size() > 1) {
                // RFC 9112 §3.2: which of them names the target is anyone's guess, and proxies in front
                // may have routed by the other one (audit S, S-7).
                refuse(request, request.method().name(), request.path(), ApiException.invalid(null,
                        "The request has " + request.headers().getAll(HttpHeaders.HOST).size()
                                + " Host headers; HTTP/1.1 allows one."));
            } else if (request.version() != HttpVersion.HTTP_2 && unsupportedTransferCoding(request) != null) {
                // Only chunked is framing the gateway reads; a proxy in front that reads another
                // coding list its own way frames the body differently (audit T, T-8).
                refuse(request, request.method().name(), request.path(), ApiException.invalid(null,
                        "Transfer-Encoding " + ApiException.shown(unsupportedTransferCoding(request))
                                + " is not supported; send the body chunked, or with a Content-Length."));
            } else if (isGrpc(request) && request.version() != HttpVersion.HTTP_2) {
                // gRPC's server answered a bare 415 with no body (audit H, H-4).
                refuse(request, request.method().name(), request.path(), ApiException.invalid(null,
                        "gRPC needs HTTP/2 (with prior knowledge on a plaintext port, ALPN h2 over TLS);"
                                + " this request came over " + request.version().alpnName() + "."));
            } else if (isGrpc(request)) {
                InferenceEndpoint.nameUnnamedEncoding(request);
                grpc.handle(request);
            } else {
                http.handle(request);
            }
        };
    }

    /**
     * An HTTP/1 request Netty's codec could not read: Vert.x's own answer is a status with an empty
     * body, no request id and no log line (audit H, H-4). The connection closes after the answer,
     * as Vert.x's own does: what follows on it cannot be framed.
     */
    public void refuseUnreadable(HttpServerRequest request) {
        Throwable cause = request.decoderResult().cause();
        if (cause instanceof PrematureChannelClosureException) {
            // A head cut off by the connection's close (a header timeout's, counted where it closed
            // it, or its client's): no request, and nobody to answer (audit V, V-14).
            return;
        }
        Future<Void> answered;
        if (cause instanceof TooLongHttpLineException) {
            // Netty had no request line to show: the method and URI it reports are placeholders.
            answered = refuse(request, null, null, new ApiException(ErrorKind.URI_TOO_LONG,
                    "The request line exceeds " + HttpServerOptions.DEFAULT_MAX_INITIAL_LINE_LENGTH + " bytes."));
        } else if (cause instanceof RequestLineVersions.Unsupported unsupported) {
            answered = refuse(request, request.method().name(), request.path(), unsupported.toApiException());
        } else if (cause instanceof TooLongHttpHeaderException) {
            answered = refuse(request, request.method().name(), request.path(), new ApiException(ErrorKind.HEADERS_TOO_LARGE,
                    "The request headers exceed " + HttpServerOptions.DEFAULT_MAX_HEADER_SIZE + " bytes."));
        } else {
            answered = refuse(request, null, null, ApiException.invalid(null, "The request is not valid HTTP/1.1"
                    + (cause == null || cause.getMessage() == null ? "." : ": " + cause.getMessage())));
        }
        answered.onComplete(ended -> request.connection().close());
    }

    private static boolean isProbe(HttpServerRequest request) {
        return (request.method() == HttpMethod.GET || request.method() == HttpMethod.HEAD)
                && GatewayMetrics.PROBE_PATHS.contains(request.path());
    }

    /**
     * Past a stopping gateway's drain its port closed, and refused every request; it now stays open
     * for the probes and scrapes alone, and refuses the rest as it would new requests: 503
     * {@code shutting_down} (an HTTP/1 connection closed after it), a gRPC stream reset with
     * {@code REFUSED_STREAM}, which gRPC clients send again (on another connection) as unprocessed.
     * An HTTP/2 connection is then shut down (GOAWAY: no new streams, its running ones go on), as the
     * port's shutdown did to it at the drain's end.
     */
    private void refuseStopping(HttpServerRequest request) {
        if (isGrpc(request) && request.version() == HttpVersion.HTTP_2) {
            if (request.path() != null && request.path().startsWith("/cocoon.v1.Inference/")) {
                metrics.grpcRefused(ErrorKind.SHUTTING_DOWN.stableCode());
            }
            request.response().reset(REFUSED_STREAM);
            goAway(request);
            return;
        }
        boolean http1 = request.version() != HttpVersion.HTTP_2;
        if (http1) {
            request.response().putHeader(HttpHeaders.CONNECTION, "close");
        }
        refuse(request, request.method().name(), request.path(), ApiException.retryLater(ErrorKind.SHUTTING_DOWN,
                "The gateway is shutting down and takes no new requests; send the request to another gateway.", 1))
                .onComplete(ended -> {
                    if (http1) {
                        request.connection().close();
                    } else {
                        goAway(request);
                    }
                });
    }

    /** No new streams on this HTTP/2 connection; those running go on until the grace, which bounds the wait. */
    private void goAway(HttpServerRequest request) {
        request.connection().shutdown(options.shutdown().graceMs(), TimeUnit.MILLISECONDS);
    }

    /** A request refused before the routes gets what a routed refusal gets: a request id, a count and an access-log line. */
    private Future<Void> refuse(HttpServerRequest request, String method, String path, ApiException error) {
        long start = System.nanoTime();
        String id = RequestIds.answered();
        request.response().putHeader(CompletionsHandler.REQUEST_ID_HEADER, id);
        metrics.responded(path, error.kind().httpStatus);
        metrics.failedUnrelayed(error.kind().stableCode());
        return OpenAiResponses.error(request.response(), error).onComplete(ended ->
                accessLog.answered(id, method, path, null, null, error.kind().httpStatus, error.kind().stableCode(),
                        System.nanoTime() - start, ended.failed()));
    }

    /** The request's Transfer-Encoding when it is anything but exactly {@code chunked}; null otherwise. */
    private static String unsupportedTransferCoding(HttpServerRequest request) {
        List<String> codings = request.headers().getAll(HttpHeaders.TRANSFER_ENCODING);
        if (codings.isEmpty() || codings.size() == 1 && codings.getFirst().strip().equalsIgnoreCase("chunked")) {
            return null;
        }
        return String.join(", ", codings);
    }

    /** gRPC proper; gRPC-Web is not served, and goes to the HTTP routes (a 404 there). */
    private static boolean isGrpc(HttpServerRequest request) {
        String type = request.getHeader("content-type");
        return type != null && type.startsWith("application/grpc") && !type.startsWith("application/grpc-web");
    }
}
