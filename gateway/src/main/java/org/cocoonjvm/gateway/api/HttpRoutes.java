package org.cocoonjvm.gateway.api;

import io.netty.handler.codec.PrematureChannelClosureException;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.ext.web.handler.CorsHandler;
import io.vertx.ext.web.handler.HttpException;
import io.vertx.grpc.server.GrpcServer;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.gateway.attestation.RefusedWorkers;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.metrics.GatewayMetrics;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.gateway.relay.AccessLog;
import org.cocoonjvm.gateway.relay.RequestOutcome;
import org.cocoonjvm.protocol.openai.AllowedMethods;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.openai.RequestParser;
import org.cocoonjvm.protocol.transport.FlushBatching;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's HTTP front door ahead of the handlers: the routes, and what every request passes
 * on its way to them (the access-log line, CORS, HEAD as GET, authentication, the body's deadline,
 * encoding and size) or instead of them (requests Netty could not read, or that no route takes).
 * {@code GatewayNode} owns the ports and their lifecycle; each of its fronts routes through one
 * {@link #router}.
 */
public final class HttpRoutes {
    private static final Logger log = LoggerFactory.getLogger(HttpRoutes.class);

    private final Vertx vertx;
    private final GatewayOptions options;
    private final ApiKeys apiKeys;
    private final GatewayMetrics metrics;
    private final AccessLog accessLog;
    private final WorkerRegistry registry;
    private final RequestBilling billing;
    /** Null when payments are disabled. */
    private final ChannelBilling payments;
    /** Null: no attestation. */
    private final GatewayAttestation attestation;
    private final RefusedWorkers refused;
    /** True once the gateway began stopping: /ready says so while streams still finish. */
    private final BooleanSupplier stopping;
    /**
     * True once a stopping gateway's drain is over: its port stays open for the probes and scrapes
     * only, until its running requests are recorded in the metrics (audit V, V-2), and every other
     * request is refused.
     */
    private final BooleanSupplier probesOnly;

    /** The HTTP/2 error code that tells a client its stream was not processed, so that it may send it again elsewhere. */
    private static final long REFUSED_STREAM = 0x7;

    public HttpRoutes(Vertx vertx, GatewayOptions options, ApiKeys apiKeys, GatewayMetrics metrics, AccessLog accessLog,
                      WorkerRegistry registry, RequestBilling billing, ChannelBilling payments,
                      GatewayAttestation attestation, RefusedWorkers refused, BooleanSupplier stopping,
                      BooleanSupplier probesOnly) {
        this.vertx = vertx;
        this.options = options;
        this.apiKeys = apiKeys;
        this.metrics = metrics;
        this.accessLog = accessLog;
        this.registry = registry;
        this.billing = billing;
        this.payments = payments;
        this.attestation = attestation;
        this.refused = refused;
        this.stopping = stopping;
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
                refuseBeforeRoutes(request, request.method().name(), request.path(), ApiException.invalid(null,
                        "The request has no Host header, which HTTP/1.1 requires."));
            } else if (request.version() != HttpVersion.HTTP_2 && request.headers().getAll(HttpHeaders.HOST).size() > 1) {
                // RFC 9112 §3.2: which of them names the target is anyone's guess, and proxies in front
                // may have routed by the other one (audit S, S-7).
                refuseBeforeRoutes(request, request.method().name(), request.path(), ApiException.invalid(null,
                        "The request has " + request.headers().getAll(HttpHeaders.HOST).size()
                                + " Host headers; HTTP/1.1 allows one."));
            } else if (request.version() != HttpVersion.HTTP_2 && unsupportedTransferCoding(request) != null) {
                // Only chunked is framing the gateway reads; a proxy in front that reads another
                // coding list its own way frames the body differently (audit T, T-8).
                refuseBeforeRoutes(request, request.method().name(), request.path(), ApiException.invalid(null,
                        "Transfer-Encoding " + ApiException.shown(unsupportedTransferCoding(request))
                                + " is not supported; send the body chunked, or with a Content-Length."));
            } else if (isGrpc(request) && request.version() != HttpVersion.HTTP_2) {
                // gRPC's server answered a bare 415 with no body (audit H, H-4).
                refuseBeforeRoutes(request, request.method().name(), request.path(), ApiException.invalid(null,
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
        refuseBeforeRoutes(request, request.method().name(), request.path(), ApiException.retryLater(ErrorKind.SHUTTING_DOWN,
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

    /** The routes of one front, whose requests run on its event loop. */
    public Router router(Admission admission) {
        Router router = Router.router(vertx);
        // A client that hangs up mid-body fails the body handler (with status 200, as Vert.x has
        // it), as does a body cut off by its deadline after the 408 went out: nobody is left to
        // answer, and any client could otherwise fill the error log with "Unhandled exception in
        // router". Other failures go on to the error handlers below.
        // An HTTP/2 client leaves by resetting its stream: the same, and it was logged as a 200 with
        // an ERROR each, 100,000 of them per connection (audit T, T-3).
        router.route().failureHandler(ctx -> {
            Throwable failure = ctx.failure();
            if (failure instanceof HttpClosedException || failure instanceof StreamResetException
                    || ctx.response().closed() || ctx.response().ended()) {
                return;
            }
            // Not Vert.x Web's own 400s of a request's head (an HTTP/2 request without :authority),
            // which are HttpExceptions and no body's.
            if (!(failure instanceof HttpException) && (ctx.statusCode() == 200 || ctx.statusCode() == 400)) {
                bodyUnreadable(ctx, failure);  // the body handler's way to say the request stream broke
            } else {
                ctx.next();
            }
        });
        // First, so that CORS preflights are logged, and a HEAD as HEAD before it is rerouted as a GET.
        router.route().handler(this::logUnrelayed);
        // Every response, a preflight's and an admin refusal's included, by its route.
        router.route().handler(metrics::countResponses);
        // HEAD wherever GET is answered (RFC 9110), load balancers' health checks included: the
        // GET handler runs and Vert.x sends its headers without the body.
        router.route().method(HttpMethod.HEAD).handler(ctx -> ctx.reroute(HttpMethod.GET, ctx.request().uri()));
        // Browsers may call the API from any page: keys travel as bearer tokens, never cookies, so
        // a page can do no more with one than curl can. The headers a preflight asks for are
        // allowed back (the OpenAI SDKs send many of their own).
        router.route("/v1/*").handler(CorsHandler.create().allowedMethods(Set.of(HttpMethod.GET, HttpMethod.POST))
                .exposedHeaders(Set.of("Retry-After", CompletionsHandler.REQUEST_ID_HEADER, OpenAiResponses.SHOULD_RETRY_HEADER))
                .maxAgeSeconds(600));
        router.get("/health").handler(ctx -> json(ctx, 200, new JsonObject().put("status", "ok")
                .put("attestation", attestation == null ? "none" : attestation.tee())));
        router.get("/ready").handler(this::ready);
        router.get("/metrics").handler(metrics::serve);  // unauthenticated, as Prometheus scrapes expect
        router.post("/v1/*").handler(CompletionsHandler::arrived);
        router.post("/v1/*").handler(this::bodyDeadline);
        router.post("/v1/*").handler(this::closeAfterAnUnreadBody);
        // Public: a client checks the gateway's evidence before it sends a key.
        router.get("/v1/attestation").handler(attestation != null ? attestation::serveEvidence : ctx -> RequestNotes.refuse(
                ctx, new ApiException(ErrorKind.NOT_FOUND, "This gateway runs without attestation.")));
        router.route("/v1/*").handler(this::authenticate);
        router.route("/admin/*").handler(this::requireAdmin);
        ModelsHandler models = new ModelsHandler(registry, billing);
        router.get("/v1/models").handler(models);
        router.get(ModelsHandler.PREFIX + "*").handler(models::retrieve);
        router.get("/v1/account").handler(new AccountHandler(billing));
        router.get(RequestsHandler.PATH).handler(new RequestsHandler(billing));
        Map<ApiKey, Integer> awaitingBodies = new HashMap<>();  // this front's event loop only
        router.post("/v1/*").handler(ctx -> awaitBody(ctx, awaitingBodies));
        router.post("/v1/*").handler(HttpRoutes::bodyIsNotEncoded);
        router.post("/v1/*").handler(HttpRoutes::bodyIsJson);
        router.post("/v1/*").handler(BodyHandler.create(false).setBodyLimit(options.maxBodyBytes()));
        router.post("/v1/*").handler(ctx -> {
            vertx.cancelTimer(ctx.<Long>get(BODY_DEADLINE));  // the body is here
            ctx.<Runnable>get(BODY_AWAITED).run();
            ctx.next();
        });
        router.post("/v1/chat/completions").handler(new CompletionsHandler(admission, RequestParser::chat));
        router.post("/v1/completions").handler(new CompletionsHandler(admission, RequestParser::completion));
        AdminHandler admin = new AdminHandler(registry, refused, payments);
        router.get("/admin/workers").handler(admin);
        router.post("/admin/workers/:id/cordon").handler(admin::cordon);
        router.post("/admin/workers/:id/uncordon").handler(admin::uncordon);
        // A request no route took. Vert.x's own 404/405 choice only sees the routes after the last
        // one that matched (the body handler for every POST /v1/*), so the routes decide here.
        Handler<RoutingContext> noRoute = ctx -> {
            String allowed = AllowedMethods.of(router, ctx.normalizedPath());
            if (allowed.isEmpty()) {
                RequestNotes.refuse(ctx, new ApiException(ErrorKind.NOT_FOUND,
                        "No route for " + ctx.request().method() + " " + ctx.request().path() + "."));
                return;
            }
            ctx.response().putHeader("Allow", allowed);
            RequestNotes.refuse(ctx, new ApiException(ErrorKind.METHOD_NOT_ALLOWED,
                    ctx.request().method() + " is not allowed on " + ctx.request().path() + "; use " + allowed + "."));
        };
        router.errorHandler(404, noRoute);
        router.errorHandler(405, noRoute);
        router.errorHandler(500, ctx -> {
            log.error("{} {} failed", ctx.request().method(), ctx.request().path(), ctx.failure());
            RequestNotes.refuse(ctx, new ApiException(ErrorKind.INTERNAL, "Internal error."));
        });
        router.errorHandler(413, ctx -> RequestNotes.refuse(ctx, new ApiException(ErrorKind.PAYLOAD_TOO_LARGE,
                "The request body exceeds " + options.maxBodyBytes() + " bytes.")));
        return router;
    }

    /**
     * Every request gets an access-log line: a relayed one from its relay, the rest (refusals
     * before a relay, models, account, admin, paths no route takes) from here when its response ends;
     * a completion's once its admission is answered, so that a client gone meanwhile gets one line,
     * its relay's if it had one. Nothing went out to a client gone before the response head: its
     * status is {@link RequestOutcome#CLIENT_CLOSED_REQUEST}, as a relay's line says. Health checks
     * and scrapes get none: they would drown the rest. An error answered here is counted by its code.
     */
    private void logUnrelayed(RoutingContext ctx) {
        String path = ctx.normalizedPath();
        if (GatewayMetrics.PROBE_PATHS.contains(path)) {
            ctx.next();
            return;
        }
        // An admitted completion is named by its admission (its chunks' id); anything else here,
        // refusals included, as its headers go out: an SDK's error.requestID then finds its line.
        // Added on each pass: a reroute drops the handlers added before it (not the end handlers).
        ctx.addHeadersEndHandler(v -> {
            if (!ctx.response().headers().contains(CompletionsHandler.REQUEST_ID_HEADER)) {
                ctx.response().putHeader(CompletionsHandler.REQUEST_ID_HEADER, RequestIds.answered());
            }
        });
        // A rerouted request (HEAD as GET) passes here again, and is logged once, with its own method.
        if (ctx.get(LOGGED_METHOD) == null) {
            String method = ctx.request().method().name();
            ctx.put(LOGGED_METHOD, method);
            long start = System.nanoTime();
            ctx.addEndHandler(ended -> {
                Future<?> admission = RequestNotes.admission(ctx);
                if (admission == null || admission.isComplete()) {
                    logAnswered(ctx, method, path, start, ended.failed());
                } else {
                    admission.onComplete(answered -> logAnswered(ctx, method, path, start, true));  // the client left meanwhile
                }
            });
        }
        ctx.next();
    }

    private void logAnswered(RoutingContext ctx, String method, String path, long startNanos, boolean clientGone) {
        if (RequestNotes.relayed(ctx)) {
            return;
        }
        ApiKey key = ctx.get(CompletionsHandler.API_KEY);
        int status = clientGone && !ctx.response().headWritten() ? RequestOutcome.CLIENT_CLOSED_REQUEST : ctx.response().getStatusCode();
        String id = ctx.response().headers().get(CompletionsHandler.REQUEST_ID_HEADER);
        String error = RequestNotes.error(ctx);
        if (error != null) {
            metrics.failedUnrelayed(error);
        }
        // A client gone before any headers went out was sent no id; its line still gets one of its own.
        accessLog.answered(id != null ? id : RequestIds.answered(), method, path,
                key == null ? null : key.id(), RequestNotes.model(ctx), status, error,
                System.nanoTime() - startNanos, clientGone);
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
            answered = refuseBeforeRoutes(request, null, null, new ApiException(ErrorKind.URI_TOO_LONG,
                    "The request line exceeds " + HttpServerOptions.DEFAULT_MAX_INITIAL_LINE_LENGTH + " bytes."));
        } else if (cause instanceof TooLongHttpHeaderException) {
            answered = refuseBeforeRoutes(request, request.method().name(), request.path(), new ApiException(ErrorKind.HEADERS_TOO_LARGE,
                    "The request headers exceed " + HttpServerOptions.DEFAULT_MAX_HEADER_SIZE + " bytes."));
        } else {
            answered = refuseBeforeRoutes(request, null, null, ApiException.invalid(null, "The request is not valid HTTP/1.1"
                    + (cause == null || cause.getMessage() == null ? "." : ": " + cause.getMessage())));
        }
        answered.onComplete(ended -> request.connection().close());
    }

    /** A request refused before the routes gets what a routed refusal gets: a request id, a count and an access-log line. */
    private Future<Void> refuseBeforeRoutes(HttpServerRequest request, String method, String path, ApiException error) {
        long start = System.nanoTime();
        String id = RequestIds.answered();
        request.response().putHeader(CompletionsHandler.REQUEST_ID_HEADER, id);
        metrics.responded(path, error.kind().httpStatus);
        metrics.failedUnrelayed(error.kind().stableCode());
        return OpenAiResponses.error(request.response(), error).onComplete(ended ->
                accessLog.answered(id, method, path, null, null, error.kind().httpStatus, error.kind().stableCode(),
                        System.nanoTime() - start, ended.failed()));
    }

    /** A gRPC call answered without a relay gets its access-log line as an HTTP request would; a refusal is counted. */
    public void grpcAnswered(String requestId, String path, ApiKey key, String model, ApiException error, long totalNanos,
                              boolean clientGone) {
        int status = clientGone ? RequestOutcome.CLIENT_CLOSED_REQUEST : error == null ? 200 : error.kind().httpStatus;
        accessLog.answered(requestId, "POST", path, key == null ? null : key.id(), model, status,
                error == null ? null : error.kind().stableCode(), totalNanos, clientGone);
        if (error != null) {
            metrics.grpcRefused(error.kind().stableCode());
        }
    }

    /**
     * A POST's body must arrive within {@code bodyTimeoutMs} of its head: 408, and an HTTP/1
     * connection closed (the rest of the body would still be on its way); an HTTP/2 stream ends
     * alone. Cancelled once the body is read, or when the request is answered before (401, 413).
     */
    private void bodyDeadline(RoutingContext ctx) {
        long limitMs = options.relay().bodyTimeoutMs();
        long timer = vertx.setTimer(limitMs, id -> {
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
        ctx.put(BODY_DEADLINE, timer);
        ctx.addEndHandler(v -> vertx.cancelTimer(timer));
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
    private static void bodyUnreadable(RoutingContext ctx, Throwable cause) {
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

    /**
     * A key's requests whose bodies have not come yet, on one event loop, at most
     * {@value #MOST_BODIES_AWAITED}: each holds its stream's state until its body or its body
     * deadline, before admission counts it against any limit, and HTTP/2 heads cost a client
     * nothing, so four connections held 360,000 of them and 3.3 GB of heap, stalling every other
     * client (audit T, T-5). A client sends a body with its head; only such a flood meets this.
     */
    private static void awaitBody(RoutingContext ctx, Map<ApiKey, Integer> awaiting) {
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
        ctx.put(BODY_AWAITED, arrived);
        ctx.addEndHandler(v -> arrived.run());  // answered, or gone, before its body
        ctx.next();
    }

    public static final int MOST_BODIES_AWAITED = 256;

    /**
     * An HTTP/1 request answered before its body was read (401, 413, 415…): Vert.x reads and
     * discards the rest of the body to keep the connection, at line rate and with no bound, no key
     * needed (audit T, T-1: 26 GB per connection in 45 s). Such an answer says
     * {@code Connection: close}, and the connection closes {@value #LINGER_MS} ms after it: long
     * enough for the client to read the answer before a reset, as in nginx's lingering close.
     */
    private void closeAfterAnUnreadBody(RoutingContext ctx) {
        HttpServerRequest request = ctx.request();
        if (request.version() != HttpVersion.HTTP_2) {
            ctx.addHeadersEndHandler(v -> {
                if (!request.isEnded()) {
                    ctx.response().putHeader(HttpHeaders.CONNECTION, "close");
                }
            });
            ctx.addEndHandler(v -> {
                if (!request.isEnded()) {
                    vertx.setTimer(LINGER_MS, id -> request.connection().close());
                }
            });
        }
        ctx.next();
    }

    /** How long an answered request's unread body is still taken before its connection closes. */
    static final long LINGER_MS = 2_000;

    /**
     * Bodies are read as sent: one compressed would otherwise fail as "not JSON", which hides
     * what the client has to change.
     */
    private static void bodyIsNotEncoded(RoutingContext ctx) {
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
    private static void bodyIsJson(RoutingContext ctx) {
        String type = ctx.request().getHeader(HttpHeaders.CONTENT_TYPE);
        if (type != null && (type.regionMatches(true, 0, "application/x-www-form-urlencoded", 0, 33)
                || type.regionMatches(true, 0, "multipart/", 0, 10))) {
            ctx.request().headers().set(HttpHeaders.CONTENT_TYPE, "application/json");
        }
        ctx.next();
    }

    /**
     * Ready: not shutting down, the ledger reachable (as far as its last call found: a gateway
     * that cannot hold funds serves no request), and some healthy worker to route to. Load
     * balancers poll this; with a {@code drainMs}, a stopping gateway answers 503 while it still
     * serves, so they move away first.
     */
    private void ready(RoutingContext ctx) {
        long healthy = registry.all().stream().filter(registry::healthy).count();
        String ledgerOutage = billing.ledgerOutage().orElse(null);
        String status = stopping.getAsBoolean() ? "stopping" : ledgerOutage != null ? "ledger unavailable" : healthy == 0 ? "no workers" : "ready";
        JsonObject body = new JsonObject().put("status", status).put("workers", healthy);
        if (ledgerOutage != null) {
            body.put("reason", ledgerOutage);
        }
        json(ctx, status.equals("ready") ? 200 : 503, body);
    }

    private void authenticate(RoutingContext ctx) {
        ApiKey key = apiKeys.find(BearerKeys.hashOf(ctx.request()));
        if (key == null) {
            RequestNotes.refuse(ctx, BearerKeys.missingOrInvalid());
        } else {
            ctx.put(CompletionsHandler.API_KEY, key);
            ctx.next();
        }
    }

    private void requireAdmin(RoutingContext ctx) {
        if (BearerKeys.carries(ctx.request(), options.adminKeyHash())) {
            ctx.next();
        } else {
            RequestNotes.refuse(ctx, BearerKeys.missingOrInvalid());
        }
    }

    private static void json(RoutingContext ctx, int status, JsonObject body) {
        OpenAiResponses.json(ctx.response().setStatusCode(status), body.encode());
    }

    /** The request's Transfer-Encoding when it is anything but exactly {@code chunked}; null otherwise. */
    private static String unsupportedTransferCoding(HttpServerRequest request) {
        java.util.List<String> codings = request.headers().getAll(HttpHeaders.TRANSFER_ENCODING);
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

    private static final String BODY_DEADLINE = "cocoon.bodyDeadline";
    private static final String BODY_AWAITED = "cocoon.bodyAwaited";
    /** The method an access-log line was set up for: a request's own, before any reroute. */
    private static final String LOGGED_METHOD = "cocoon.loggedMethod";

}
