package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.CorsHandler;
import io.vertx.ext.web.handler.HttpException;
import java.util.Set;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's HTTP routes, and what every request passes on its way to their handlers (the
 * access-log line, CORS, HEAD as GET, authentication, the body's steps in {@link RequestBodies}) or
 * instead of them (a path or method no route takes). {@code GatewayNode} owns the ports and their
 * lifecycle; each of its fronts routes through one {@link #router}, behind its {@link FrontDispatch}.
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

    public HttpRoutes(Vertx vertx, GatewayOptions options, ApiKeys apiKeys, GatewayMetrics metrics, AccessLog accessLog,
                      WorkerRegistry registry, RequestBilling billing, ChannelBilling payments,
                      GatewayAttestation attestation, RefusedWorkers refused, BooleanSupplier stopping) {
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
    }

    /** The routes of one front, whose requests run on its event loop. */
    public Router router(Admission admission) {
        Router router = Router.router(vertx);
        RequestBodies bodies = new RequestBodies(options, admission.timers());
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
                RequestBodies.unreadable(ctx, failure);  // the body handler's way to say the request stream broke
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
        router.post("/v1/*").handler(bodies::deadline);
        router.post("/v1/*").handler(bodies::closeAfterAnUnreadBody);
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
        router.post("/v1/*").handler(bodies::awaited);
        router.post("/v1/*").handler(RequestBodies::notEncoded);
        router.post("/v1/*").handler(RequestBodies::readAsJson);
        router.post("/v1/*").handler(bodies.reader());
        router.post("/v1/*").handler(bodies::arrived);
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

    /** The method an access-log line was set up for: a request's own, before any reroute. */
    private static final String LOGGED_METHOD = "cocoon.loggedMethod";

}
