package org.cocoonjvm.gateway;

import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcProtocol;
import io.vertx.grpc.server.GrpcServerOptions;
import io.vertx.grpc.server.GrpcServerRequest;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.cocoonjvm.billing.channel.InMemoryChannelJournal;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.gateway.attestation.RefusedWorkers;
import org.cocoonjvm.gateway.attestation.WorkerAdmission;
import org.cocoonjvm.gateway.api.Admission;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.api.ApiKeys;
import org.cocoonjvm.gateway.api.FrontDispatch;
import org.cocoonjvm.gateway.api.HttpRoutes;
import org.cocoonjvm.gateway.api.InferenceEndpoint;
import org.cocoonjvm.gateway.api.ModelCatalog;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.limits.RateLimiter;
import org.cocoonjvm.gateway.metrics.GatewayMetrics;
import org.cocoonjvm.gateway.relay.AccessLog;
import org.cocoonjvm.gateway.relay.EventLoopTimers;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.gateway.relay.RelayObserver;
import org.cocoonjvm.gateway.relay.RunningRelays;
import org.cocoonjvm.gateway.registry.Cordons;
import org.cocoonjvm.gateway.registry.ServedModels;
import org.cocoonjvm.gateway.registry.SessionEndpoint;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.grpc.GatewayGrpcService;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.protocol.transport.ChunkFraming;
import org.cocoonjvm.protocol.transport.FlushBatching;
import org.cocoonjvm.protocol.transport.RequestLineVersions;
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
    /** Concurrent HTTP/2 streams a client connection may open (nginx allows 128, Go 250). */
    public static final int MAX_CLIENT_STREAMS = 1_000;

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
    /** Set at start: each front's requests pass its dispatch, then its router. */
    private HttpRoutes routes;
    private FrontDispatch dispatch;
    private HttpServer workerServer;
    private long rotationTimer = -1;
    private long modelsTimer = -1;
    private volatile int port;
    private volatile int workerPort;
    /** Set by whichever front begins stopping first: the fronts may stop concurrently, each on its own event loop. */
    private final AtomicBoolean stopping = new AtomicBoolean();
    /**
     * Set by whichever front ends its drain first: the port then serves the probes and
     * {@code /metrics} only ({@link FrontDispatch}), until the fronts close it.
     */
    private final AtomicBoolean probesOnly = new AtomicBoolean();
    /** Another process took this gateway's ledger lease: its stop cuts what runs at once ({@link #fenced}). */
    private volatile boolean fenced;

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
        Path dataDir = options.dataDir();
        this.registry = new WorkerRegistry(options.heartbeatIntervalMs(), options.relay().flexReservePercent(), System::nanoTime,
                Clock.systemUTC(), dataDir == null ? Cordons.inMemory() : Cordons.load(dataDir.resolve("cordons.json")),
                dataDir == null ? ServedModels.inMemory() : ServedModels.load(dataDir.resolve("models.json")));
        this.metrics = GatewayMetrics.prometheus(registry);
        observers.add(metrics);
        this.payments = options.payments().enabled() ? new ChannelBilling(options.payments(), billing, channels, onChain) : null;
        if (payments != null) {
            metrics.payments(payments.stats());
        }
        metrics.ledger(billing);
        billing.countProgress(metrics::billedProgress);
        billing.reportRecovered((recovered, errorCode) -> {
            accessLog.recovered(recovered, errorCode);
            metrics.recovered(recovered, errorCode);
        });
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
        routes = new HttpRoutes(vertx, options, apiKeys, metrics, accessLog, registry, billing, payments, attestation,
                refused, stopping::get);
        dispatch = new FrontDispatch(options, metrics, accessLog, probesOnly::get);
        Future<?> billingStarted = Future.succeededFuture();
        if (payments != null) {
            payments.stopsAfter(paymentsDone.future());
            billingStarted = vertx.deployVerticle(payments);
        }
        modelsTimer = registry.saveModelsEvery(vertx);
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
        Future.all(fronts.stream().map(f -> f.shutdown.settled()).toList())
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
     * registry, limits, billing and metrics it touches are shared and thread-safe. Its stop is
     * its {@link FrontShutdown}'s.
     */
    private final class Front extends VerticleBase {
        private final int listenPort;
        private HttpServer server;
        private GrpcClient workers;
        private HttpClient transport;
        private final RunningRelays running = new RunningRelays();
        /** Made at start, on this front's context. */
        private FrontShutdown shutdown;

        Front(int listenPort) {
            this.listenPort = listenPort;
        }

        @Override
        public Future<?> start() {
            shutdown = new FrontShutdown(vertx, context, options.shutdown(), running, metrics, () -> fenced,
                    () -> probesOnly.set(true));
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
            Relay.Env relay = new Relay.Env(vertx, workers, registry, options.relay(),
                    RelayObserver.all(observers.toArray(RelayObserver[]::new)), running, new EventLoopTimers(vertx));
            Admission admission = new Admission(relay, limiter, billing);
            new InferenceEndpoint(admission, apiKeys, new ModelCatalog(registry, billing), options.maxBodyBytes(),
                    options.relay().bodyTimeoutMs(), routes::grpcAnswered).bind(grpc);
            ConnectionOptions connections = options.connections();
            ConnectionDeadlines.Closes closes = new ConnectionDeadlines.Closes(metrics.connectionsClosed("header_timeout"),
                    metrics.connectionsClosed("idle_timeout"), metrics.connectionsClosed("idle_evicted"));
            // Connections spread evenly over the fronts' event loops, and so does the bound.
            ConnectionDeadlines.Idle idle = new ConnectionDeadlines.Idle(
                    Math.ceilDiv(connections.mostIdle(), options.eventLoops()));
            HttpServerOptions listening = ConnectionDeadlines.beforeInstall(new HttpServerOptions(), connections)
                    .setHost(options.host()).setPort(listenPort);
            server = vertx.createHttpServer((attestation == null ? listening : attestation.clientServer(listening))
                            // Backends multiplex many gRPC streams over one connection (see the backend API),
                            // but each stream holds ~8 KB before admission counts it: 100,000 per connection
                            // let four connections hold 3.3 GB (audit T, T-5). Clients open more connections.
                            .setInitialSettings(new Http2Settings().setMaxConcurrentStreams(MAX_CLIENT_STREAMS))
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
                        // A plaintext client port has no handshake to fail: what comes here is a reset or a close.
                        if (clientRaTls()) {
                            attestation.clientHandshakeFailed(failure);
                        }
                    })
                    .connectionHandler(connection -> {
                        FlushBatching.install(connection);
                        ChunkFraming.install(connection);
                        RequestLineVersions.install(connection);
                        ConnectionDeadlines.install(connection, connections, closes, idle);
                    })
                    .invalidRequestHandler(dispatch::refuseUnreadable)
                    .requestHandler(dispatch.dispatch(grpc, routes.router(admission)));
            return server.listen().onSuccess(bound -> fronts.add(this));
        }

        @Override
        public Future<?> stop() {
            stopsBegin();
            return shutdown.stop(server).eventually(() -> workers.close()).eventually(() -> transport.close());
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

    /**
     * The stop's first step, whichever of the fronts (or this node, with none) begins it: from now
     * on /ready says so, and the operator reads it when the signal came, not once drain and grace
     * are over.
     */
    private void stopsBegin() {
        if (stopping.compareAndSet(false, true)) {
            ShutdownOptions shutdown = options.shutdown();
            if (fenced) {
                log.info("gateway fenced: stopping at once, no drain and no grace; its running requests end now");
            } else {
                log.info("gateway stopping: /ready says so, {} ms of drain, then {} ms for running requests to finish",
                        shutdown.drainMs(), shutdown.graceMs());
            }
        }
    }

    /**
     * Another process took this gateway's ledger lease (a sweep, or a start with {@code --take-over}):
     * from now on the ledger bills nothing this gateway relays, so its stop, which the caller starts
     * next, skips the drain and the grace and ends running requests at once; a stop already under
     * way ends what is left of them. Thread-safe.
     */
    public void fenced() {
        fenced = true;
        if (stopping.get()) {
            log.info("gateway fenced while stopping: what is left of its drain and grace ends now, with its running requests");
        }
        for (Front front : fronts) {
            front.shutdown.fencedWhileStopping();
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
        vertx.cancelTimer(modelsTimer);
        // After the fronts: a model served until the stop is saved as served then, for the next start.
        Future<Void> modelsSaved = registry.saveModels(vertx).recover(e -> {
            log.warn("cannot save the known models in the data dir ({}): the next start answers 404 for models served"
                    + " since the last save until their workers are back", e.toString());
            return Future.succeededFuture();
        });
        return modelsSaved.eventually(() -> workerServer == null ? Future.succeededFuture() : workerServer.close());
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
