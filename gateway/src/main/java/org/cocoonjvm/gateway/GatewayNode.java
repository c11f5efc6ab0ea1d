package org.cocoonjvm.gateway;

import io.micrometer.core.instrument.MeterRegistry;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.ext.web.handler.CorsHandler;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcProtocol;
import io.vertx.grpc.server.GrpcServerOptions;
import io.vertx.grpc.server.GrpcServerRequest;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.cocoonjvm.gateway.api.AccountHandler;
import org.cocoonjvm.billing.channel.InMemoryChannelJournal;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.gateway.api.AdminHandler;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.gateway.attestation.RefusedWorkers;
import org.cocoonjvm.gateway.attestation.WorkerAdmission;
import org.cocoonjvm.gateway.api.Admission;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.api.ApiKeys;
import org.cocoonjvm.gateway.api.CompletionsHandler;
import org.cocoonjvm.gateway.api.InferenceEndpoint;
import org.cocoonjvm.gateway.api.ModelCatalog;
import org.cocoonjvm.gateway.api.RequestIds;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.limits.RateLimiter;
import org.cocoonjvm.gateway.metrics.GatewayMetrics;
import org.cocoonjvm.gateway.relay.AccessLog;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.gateway.relay.RelayObserver;
import org.cocoonjvm.gateway.relay.RequestOutcome;
import org.cocoonjvm.gateway.relay.RunningRelays;
import io.vertx.core.json.JsonObject;
import org.cocoonjvm.protocol.openai.RequestParser;
import org.cocoonjvm.gateway.api.ModelsHandler;
import org.cocoonjvm.gateway.registry.Cordons;
import org.cocoonjvm.gateway.registry.SessionEndpoint;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.openai.AllowedMethods;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.grpc.GatewayGrpcService;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.gateway.api.RequestNotes;
import org.cocoonjvm.gateway.api.RequestsHandler;
import org.cocoonjvm.protocol.transport.ChunkFraming;
import org.cocoonjvm.protocol.transport.FlushBatching;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway: one port serving the OpenAI HTTP API and the gRPC {@code Inference} service for
 * clients, and the gRPC {@code Gateway} service for workers. With attestation, workers register
 * on a second port over mutual RA-TLS instead ({@link GatewayAttestation}), the gateway talks
 * to them over RA-TLS, and the client port serves TLS on the gateway's RA-TLS certificate unless
 * it is {@code ClientPort.PLAINTEXT}. Deploy it as a verticle; undeploying closes the ports.
 */
public final class GatewayNode extends VerticleBase {
    private static final Logger log = LoggerFactory.getLogger(GatewayNode.class);

    private final GatewayOptions options;
    private final WorkerRegistry registry;
    private final RequestBilling billing;
    private final GatewayMetrics metrics;
    /** Null when payments are disabled. */
    private final ChannelBilling payments;
    /** Null: no attestation (plaintext; unit tests and bench baselines). */
    private final GatewayAttestation attestation;
    /** Workers refused registration, whatever for; with attestation, its list (handshake refusals land there too). */
    private final RefusedWorkers refused;
    private static final AtomicInteger SHARED_RANDOM_PORTS = new AtomicInteger();

    private final RateLimiter limiter = new RateLimiter(System::nanoTime);
    /** The started fronts, the first one bound the port. */
    private final List<Front> fronts = new CopyOnWriteArrayList<>();
    /** Where workers hold their sessions: each front's (no attestation), or the worker port's. */
    private final List<SessionEndpoint> sessions = new CopyOnWriteArrayList<>();
    /**
     * Completes once a stop has no more use for payments: every front's relays settled, one last
     * round sent, the worker sessions closed. The payment verticle's stop waits for it.
     */
    private final Promise<Void> paymentsDone = Promise.promise();
    private final AccessLog accessLog = new AccessLog();
    private final ApiKeys apiKeys;
    private final List<RelayObserver> observers = new CopyOnWriteArrayList<>(List.of(accessLog));
    private HttpServer workerServer;
    private long rotationTimer = -1;
    private volatile int port;
    private volatile int workerPort;
    /** Set by whichever front begins stopping first: the fronts may stop concurrently, each on its own event loop. */
    private final AtomicBoolean stopping = new AtomicBoolean();

    /** A gateway whose payment key and channels live in memory: a restart opens new channels. */
    public GatewayNode(GatewayOptions options, RequestBilling billing) {
        this(options, billing, new InMemoryChannelJournal(), null, null);
    }

    /**
     * @param channels    the payment key and the channels' last states; a durable journal (the
     *                    ledger's) lets a restarted gateway keep paying on the same channels
     * @param attestation null for a gateway that verifies no worker
     */
    public GatewayNode(GatewayOptions options, RequestBilling billing, ChannelJournal channels,
                       GatewayAttestation attestation) {
        this(options, billing, channels, null, attestation);
    }

    /** @param onChain opens every worker's channel on chain; null keeps channels off chain */
    public GatewayNode(GatewayOptions options, RequestBilling billing, ChannelJournal channels, ChannelOnChain onChain,
                       GatewayAttestation attestation) {
        this.options = options;
        this.apiKeys = new ApiKeys(options.apiKeys());
        this.attestation = attestation;
        this.refused = attestation != null ? attestation.refused() : new RefusedWorkers(Clock.systemUTC());
        this.billing = billing;
        this.registry = new WorkerRegistry(options.heartbeatIntervalMs(), options.relay().flexReservePercent(), System::nanoTime,
                Clock.systemUTC(), options.cordonsFile() == null ? Cordons.inMemory() : Cordons.load(options.cordonsFile()));
        this.metrics = GatewayMetrics.prometheus(registry);
        observers.add(metrics);
        this.payments = options.payments().enabled() ? new ChannelBilling(options.payments(), billing, channels, onChain) : null;
        if (payments != null) {
            metrics.payments(payments.stats());
        }
        metrics.ledger(billing);
    }

    /**
     * The client keys it takes now: an edited keys file's, say. Thread-safe; running requests keep
     * theirs, and a key whose limits changed is held to the new ones from its next request.
     */
    public void replaceApiKeys(Map<String, ApiKey> keys) {
        apiKeys.replace(keys);
    }

    /**
     * Also tells {@code observer} how each request went (on the request's event loop; it must not
     * block), beside the access log and the metrics: a benchmark's exact per-request numbers, say.
     * Call before deploying.
     */
    public GatewayNode observe(RelayObserver observer) {
        observers.add(observer);
        return this;
    }

    @Override
    public Future<?> start() {
        Future<?> billingStarted = Future.succeededFuture();
        if (payments != null) {
            payments.stopsAfter(paymentsDone.future());
            billingStarted = vertx.deployVerticle(payments);
        }
        return billingStarted.compose(v -> listen())
                .onSuccess(v -> settleAndPayLast())
                .onFailure(e -> paymentsDone.tryComplete());  // the rollback's undeploy must not wait for a stop that never comes
    }

    /**
     * Bound on the stop's last payment round: a round stuck on its ledger must not hold the stop
     * for ever; what it did not pay, a gateway restarted on the same ledger pays.
     */
    private static final long LAST_ROUND_MS = 3_000;

    /**
     * The stop's last steps for payments: once every front's relays are settled (or its server is
     * closed), one last round pays what each worker is owed, on its session, and only then the
     * sessions close. A worker is left nothing unpaid by a gateway that stopped in good order,
     * which matters most for one that is retired, its ledger and journal with it.
     */
    private void settleAndPayLast() {
        Future.all(fronts.stream().map(f -> f.settled.future()).toList())
                .compose(v -> payments == null ? Future.succeededFuture()
                        : payments.lastRound().timeout(LAST_ROUND_MS, TimeUnit.MILLISECONDS).recover(e -> {
                            log.warn("the last payment round did not end within {} ms ({}); the sessions close without it",
                                    LAST_ROUND_MS, e.getMessage());
                            return Future.succeededFuture();
                        }))
                .eventually(() -> Future.all(sessions.stream().map(SessionEndpoint::closeAll).toList()))
                .onComplete(v -> paymentsDone.tryComplete());
    }

    private Future<?> listen() {
        // Servers of one Vert.x instance on the same port share one socket, and Vert.x spreads its
        // connections over their event loops. Port 0 is never shared; a negative port is Vert.x's
        // shared random port, one per distinct value, so each gateway takes a value of its own.
        int listenPort = options.port() > 0 ? options.port() : -SHARED_RANDOM_PORTS.incrementAndGet();
        Future<?> deployed = Future.succeededFuture();
        for (int i = 0; i < options.eventLoops(); i++) {
            deployed = deployed.compose(v -> vertx.deployVerticle(new Front(listenPort)));
        }
        return deployed.compose(v -> {
            port = fronts.getFirst().server.actualPort();
            log.info("gateway listening on {} ({} event loops){}", url(), options.eventLoops(),
                    clientRaTls() ? "; RA-TLS: clients check its certificate through cocoon attest proxy" : "");
            return attestation == null ? Future.succeededFuture() : listenForWorkers();
        });
    }

    /**
     * One event loop's share of the client port: its own HTTP server on the shared port, and its
     * own gRPC client, whose connections to the workers are made from, and so live on, this loop.
     * A relay then runs on one thread from the client's socket to the worker's and back: the
     * registry, limits, billing and metrics it touches are shared and thread-safe.
     */
    private final class Front extends VerticleBase {
        private final int listenPort;
        private HttpServer server;
        private GrpcClient workers;
        private HttpClient transport;
        private final RunningRelays running = new RunningRelays();
        /** Completed by the stop: the relays ended at the cut have settled, or the server is closed. */
        private final Promise<Void> settled = Promise.promise();

        Front(int listenPort) {
            this.listenPort = listenPort;
        }

        @Override
        public Future<?> start() {
            // Inference requests may be as large as HTTP bodies; the transport limit never undercuts that.
            // gRPC over HTTP/2 only: gRPC-Web and transcoding were served too, undocumented, and a
            // malformed gRPC-Web-text body logged an ERROR stack trace for anyone (audit H, H-3).
            GrpcServer grpc = GrpcServer.server(vertx, new GrpcServerOptions()
                    .setMaxMessageSize(Math.max(options.maxBodyBytes(), GrpcServerOptions.DEFAULT_MAX_MESSAGE_SIZE))
                    .removeEnabledProtocol(GrpcProtocol.WEB).removeEnabledProtocol(GrpcProtocol.WEB_TEXT)
                    .removeEnabledProtocol(GrpcProtocol.TRANSCODING));
            if (attestation == null) {
                SessionEndpoint endpoint = new SessionEndpoint(registry,
                        WorkerAdmission.unattested(options.remoteUnattestedWorkers()), payments, refused);
                endpoint.bind(grpc);
                sessions.add(endpoint);
                // What GrpcClient.client(vertx) would build, plus the flush batching and the PINGs.
                transport = vertx.httpClientBuilder()
                        .with(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false))
                        .withConnectHandler(connection -> {
                            FlushBatching.install(connection);
                            WorkerLiveness.install(vertx, connection, registry);
                        }).build();
            } else {
                transport = attestation.workerClient(vertx, connection -> WorkerLiveness.install(vertx, connection, registry));
                grpc.callHandler(GatewayGrpcService.Session, GatewayNode.this::sessionOnClientPort);
            }
            workers = GrpcClient.client(vertx, transport);
            Relay.Context relay = new Relay.Context(vertx, workers, registry, options.relay(),
                    RelayObserver.all(observers.toArray(RelayObserver[]::new)), running);
            Admission admission = new Admission(relay, limiter, billing);
            new InferenceEndpoint(admission, apiKeys, new ModelCatalog(registry, billing), options.maxBodyBytes(),
                    vertx, options.relay().bodyTimeoutMs(), GatewayNode.this::grpcAnswered).bind(grpc);
            Router http = router(admission);
            ConnectionOptions connections = options.connections();
            ConnectionDeadlines.Closes closes = new ConnectionDeadlines.Closes(metrics.connectionsClosed("header_timeout"),
                    metrics.connectionsClosed("idle_timeout"));
            HttpServerOptions listening = ConnectionDeadlines.beforeInstall(new HttpServerOptions(), connections)
                    .setHost(options.host()).setPort(listenPort);
            server = vertx.createHttpServer((attestation == null ? listening : attestation.clientServer(listening))
                            // Backends multiplex many gRPC streams over one connection (see the backend API).
                            .setInitialSettings(new Http2Settings().setMaxConcurrentStreams(100_000))
                            // Cancelled streams are normal traffic here. With Netty's rapid-reset guard at its
                            // Vert.x default (200 resets in 30 s per connection), k6-load's disconnect storm
                            // against a slow engine closed a connection on it and the worker was unroutable
                            // (503) for the rest of the storm; raised here and on the worker, it passed.
                            // Still bounded, far above that.
                            .setHttp2RstFloodMaxRstFramePerWindow(100_000)
                            // No WebSockets here; with compression on, every HTTP/1 connection had an
                            // extension handler that each token's write passed through.
                            .setPerFrameWebSocketCompressionSupported(false)
                            .setPerMessageWebSocketCompressionSupported(false))
                    .exceptionHandler(failure -> {
                        if (attestation != null) {
                            attestation.clientHandshakeFailed(failure);
                        }
                    })
                    .connectionHandler(connection -> {
                        FlushBatching.install(connection);
                        ChunkFraming.install(connection);
                        ConnectionDeadlines.install(connection, connections, closes);
                    })
                    .invalidRequestHandler(GatewayNode.this::refuseUnreadable)
                    .requestHandler(request -> {
                        if (request.version() == HttpVersion.HTTP_1_1 && request.authority() == null) {
                            // Vert.x Web refuses it with an ERROR stack trace in the log: a client's mistake, a 400 here.
                            // Only HTTP/1.1 requires Host: HTTP/1.0 health checks (HAProxy's httpchk) send none
                            // and are routed as any other request, which Vert.x Web allows (audit K, K-8).
                            refuseBeforeRoutes(request, request.method().name(), request.path(), ApiException.invalid(null,
                                    "The request has no Host header, which HTTP/1.1 requires."));
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
                    });
            return server.listen().onSuccess(bound -> fronts.add(this));
        }

        @Override
        public Future<?> stop() {
            stopsBegin();
            ShutdownOptions shutdown = options.shutdown();
            Future<?> drained = shutdown.drainMs() == 0 ? Future.succeededFuture()
                    : Future.future(done -> vertx.setTimer(shutdown.drainMs(), id -> done.complete()));
            // shutdown, not close: stop accepting, let open streams finish, then cut what is left.
            // What is still running near the end is ended first, so that its client is told why.
            // Without attestation the worker sessions on this port hold the server open until they
            // close, after the last payment round, which waits for this front's relays to settle.
            return drained.compose(v -> {
                long cut = vertx.setTimer(Math.max(1, shutdown.graceMs() - shutdown.cutMarginMs()), id -> {
                    endRunning();
                    running.emptied().onComplete(none -> settled.tryComplete());
                });
                return server.shutdown(shutdown.graceMs(), TimeUnit.MILLISECONDS)
                        .eventually(() -> Future.succeededFuture(vertx.cancelTimer(cut)));
            }).eventually(() -> Future.succeededFuture(settled.tryComplete()))  // closed: nothing more can run here
                    .eventually(() -> workers.close()).eventually(() -> transport.close());
        }

        private void endRunning() {
            if (running.size() > 0) {
                log.info("shutdown grace ends: stopping {} running request(s)", running.size());
                running.endAll(ApiException.retryLater(ErrorKind.SHUTTING_DOWN, "The gateway is shutting down and its grace for "
                        + "running requests ran out; what was generated is billed. Send the request again.", 1),
                        // Half the margin: the other half sends the error events before the connections close.
                        options.shutdown().cutMarginMs() / 2);
            }
        }
    }

    private Future<?> listenForWorkers() {
        GrpcServer server = GrpcServer.server(vertx);
        SessionEndpoint endpoint = new SessionEndpoint(registry, attestation, payments, refused);
        endpoint.bind(server);
        sessions.add(endpoint);
        rotationTimer = attestation.startRotation(vertx);
        return attestation.listenForWorkers(vertx, options.host(), server).onSuccess(bound -> {
            workerServer = bound;
            workerPort = bound.actualPort();
            log.info("gateway ({}) takes workers over RA-TLS on {}:{}", attestation.tee(), options.host(), workerPort);
        });
    }

    /**
     * A worker without attestation dialing an attested gateway's client port: gRPC's own answer
     * ("Method not found: cocoon.v1.Gateway/Session") sent its operator guessing; this one names
     * the port and the option it needs, and lists it under {@code refused}.
     */
    private void sessionOnClientPort(GrpcServerRequest<WorkerMessage, GatewayMessage> call) {
        String remote = String.valueOf(call.connection().remoteAddress());
        String message = "this gateway is attested: workers register on its RA-TLS worker port " + workerPort
                + ", not on its client port; start the worker with --attestation and --gateway HOST:" + workerPort;
        if (refused.add(remote, null, "attestation_required", message, null, null)) {
            log.warn("worker session from {} on the client port refused (attestation_required): {}", remote, message);
        }
        call.handler(m -> { });
        call.response().statusMessage("attestation_required: " + message);
        call.response().status(GrpcStatus.FAILED_PRECONDITION).end();
    }

    private Router router(Admission admission) {
        Router router = Router.router(vertx);
        // A client that hangs up mid-body fails the body handler (with status 200, as Vert.x has
        // it), as does a body cut off by its deadline after the 408 went out: nobody is left to
        // answer, and any client could otherwise fill the error log with "Unhandled exception in
        // router". Other failures go on to the error handlers below.
        router.route().failureHandler(ctx -> {
            if (!(ctx.failure() instanceof HttpClosedException) && !ctx.response().closed() && !ctx.response().ended()) {
                ctx.next();
            }
        });
        // First, so that CORS preflights are logged, and a HEAD as HEAD before it is rerouted as a GET.
        router.route().handler(this::logUnrelayed);
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
        router.route("/v1/*").handler(metrics::countResponses);
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
        router.post("/v1/*").handler(GatewayNode::bodyIsNotEncoded);
        router.post("/v1/*").handler(GatewayNode::bodyIsJson);
        router.post("/v1/*").handler(BodyHandler.create(false).setBodyLimit(options.maxBodyBytes()));
        router.post("/v1/*").handler(ctx -> {
            vertx.cancelTimer(ctx.<Long>get(BODY_DEADLINE));  // the body is here
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
     * Every API and admin request gets an access-log line: a relayed one from its relay, the
     * rest (refusals before a relay, models, account, admin) from here when its response ends;
     * a completion's once its admission is answered, so that a client gone meanwhile gets one line,
     * its relay's if it had one. Nothing went out to a client gone before the response head: its
     * status is {@link RequestOutcome#CLIENT_CLOSED_REQUEST}, as a relay's line says. Health checks
     * and scrapes get none: they would drown the rest.
     */
    private void logUnrelayed(RoutingContext ctx) {
        String path = ctx.normalizedPath();
        if (!path.startsWith("/v1/") && !path.startsWith("/admin/")) {
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
        // A client gone before any headers went out was sent no id; its line still gets one of its own.
        accessLog.answered(id != null ? id : RequestIds.answered(), method, path,
                key == null ? null : key.id(), RequestNotes.model(ctx), status, RequestNotes.error(ctx),
                System.nanoTime() - startNanos, clientGone);
    }

    /**
     * An HTTP/1 request Netty's codec could not read: Vert.x's own answer is a status with an empty
     * body, no request id and no log line (audit H, H-4). The connection closes after the answer,
     * as Vert.x's own does: what follows on it cannot be framed.
     */
    private void refuseUnreadable(HttpServerRequest request) {
        Throwable cause = request.decoderResult().cause();
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
        metrics.responded(error.kind().httpStatus);
        return OpenAiResponses.error(request.response(), error).onComplete(ended ->
                accessLog.answered(id, method, path, null, null, error.kind().httpStatus, error.kind().stableCode(),
                        System.nanoTime() - start, ended.failed()));
    }

    /** A gRPC call answered without a relay gets its access-log line as an HTTP request would; a refusal is counted. */
    private void grpcAnswered(String requestId, String path, ApiKey key, String model, ApiException error, long totalNanos,
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
        String status = stopping.get() ? "stopping" : ledgerOutage != null ? "ledger unavailable" : healthy == 0 ? "no workers" : "ready";
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
        if (options.adminKeyHash().equals(BearerKeys.hashOf(ctx.request()))) {
            ctx.next();
        } else {
            RequestNotes.refuse(ctx, BearerKeys.missingOrInvalid());
        }
    }

    private static void json(RoutingContext ctx, int status, JsonObject body) {
        ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body.encode());
    }

    /** gRPC proper; gRPC-Web is not served, and goes to the HTTP routes (a 404 there). */
    private static boolean isGrpc(HttpServerRequest request) {
        String type = request.getHeader("content-type");
        return type != null && type.startsWith("application/grpc") && !type.startsWith("application/grpc-web");
    }

    private static final String BODY_DEADLINE = "cocoon.bodyDeadline";
    /** The method an access-log line was set up for: a request's own, before any reroute. */
    private static final String LOGGED_METHOD = "cocoon.loggedMethod";

    /**
     * The stop's first step, whichever of the fronts (or this node, with none) begins it: from now
     * on /ready says so, and the operator reads it when the signal came, not once drain and grace
     * are over.
     */
    private void stopsBegin() {
        if (stopping.compareAndSet(false, true)) {
            ShutdownOptions shutdown = options.shutdown();
            log.info("gateway stopping: /ready says so, {} ms of drain, then {} ms for running requests to finish",
                    shutdown.drainMs(), shutdown.graceMs());
        }
    }

    /**
     * The fronts are this verticle's children, undeployed (their streams drained) before this
     * runs; the worker port closes last, so draining streams keep their workers.
     */
    @Override
    public Future<?> stop() {
        stopsBegin();
        if (rotationTimer >= 0) {
            vertx.cancelTimer(rotationTimer);
        }
        metrics.close();
        return workerServer == null ? Future.succeededFuture() : workerServer.close();
    }

    /** The registry behind {@code /metrics}, for components beside the node (the deposit watcher). */
    public MeterRegistry meters() {
        return metrics.meters();
    }

    /** The bound port; set once started. */
    public int port() {
        return port;
    }

    /** Where clients reach it, once started: {@code http://host:port}, or {@code https://} when its client port is RA-TLS. */
    public String url() {
        return (clientRaTls() ? "https" : "http") + "://" + options.host() + ":" + port;
    }

    private boolean clientRaTls() {
        return attestation != null && attestation.clientPort() == GatewayAttestation.ClientPort.RA_TLS;
    }

    /** Where workers register over RA-TLS; 0 on a gateway without attestation. */
    public int workerPort() {
        return workerPort;
    }

    public WorkerRegistry registry() {
        return registry;
    }

    /** The verticle that pays workers; null when payments are disabled. */
    public ChannelBilling payments() {
        return payments;
    }
}
