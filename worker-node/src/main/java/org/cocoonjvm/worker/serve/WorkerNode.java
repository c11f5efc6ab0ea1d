package org.cocoonjvm.worker.serve;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerOptions;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.WorkerStatus;
import org.cocoonjvm.protocol.transport.ChunkFraming;
import org.cocoonjvm.protocol.transport.FlushBatching;
import org.cocoonjvm.protocol.transport.MessageLimits;
import org.cocoonjvm.protocol.transport.RequestLineVersions;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One worker: its generator (usually the scheduler over an engine), one port that serves both the gRPC {@code Worker} service
 * (for gateways) and the OpenAI HTTP API (for operators), and the link that registers it with a
 * gateway. Deploy it as a verticle; the deployment completes once the port serves, and the link
 * goes on registering for as long as the worker runs ({@link #registered()}): a GPU box and its
 * gateway may come up in either order. Undeploying drains and stops it.
 */
public final class WorkerNode extends VerticleBase {
    private static final Logger log = LoggerFactory.getLogger(WorkerNode.class);

    static final int MAX_STREAMS = 100_000;
    /**
     * How often the lifetime token counts are saved while the worker runs (and once more at its
     * stop): at most this much counting is lost to a crash, for one small file written this often.
     */
    public static final long TOKEN_SAVE_MS = 5_000;

    private final WorkerOptions options;
    private final Generator generator;
    private final WorkerPayments payments;
    /** Null: no attestation (plaintext; unit tests and bench baselines). */
    private final WorkerTls tls;
    private HttpServer server;
    private long rotationTimer = -1;
    private long tokenTimer = -1;
    private GatewayLink link;
    private WorkerMetrics metrics;
    /** Set when the stop begins: /status then says so, for health checkers that would otherwise see a busy worker. */
    private volatile boolean draining;
    /** The link's stop, once asked for: at an engine failure, and again (the same future) at undeploy. */
    private Future<Void> leaving;
    private volatile String endpoint;
    private final Promise<Void> registered = Promise.promise();

    /**
     * A worker that batches requests onto an in-process engine. Its scheduler enforces the credit
     * window: a channel's sequences pause while the gateway owes more than it allows.
     */
    public WorkerNode(Engine engine, WorkerOptions options) {
        this(engine, options, null);
    }

    /** An attested worker ({@code tls} null: none). */
    public WorkerNode(Engine engine, WorkerOptions options, WorkerTls tls) {
        this(new WorkerPayments(options.payments()), engine, options, tls);
    }

    /** A worker paid through {@code payments}, e.g. one with a chain client that checks each channel on chain. */
    public WorkerNode(WorkerPayments payments, Engine engine, WorkerOptions options) {
        this(payments, engine, options, null);
    }

    private WorkerNode(WorkerPayments payments, Engine engine, WorkerOptions options, WorkerTls tls) {
        this(new Scheduler(engine, options.scheduler(), payments), options, payments, tls);
    }

    /**
     * A worker over any generator, paid through a {@link WorkerPayments} of its own. Payments are
     * verified and stored, but nothing meters or pauses: use the constructor that takes the
     * payments the generator was built with when it should.
     */
    public WorkerNode(Generator generator, WorkerOptions options) {
        this(generator, options, (WorkerTls) null);
    }

    /** {@code tls} null: no attestation. */
    public WorkerNode(Generator generator, WorkerOptions options, WorkerTls tls) {
        this(generator, options, new WorkerPayments(options.payments()), tls);
    }

    /**
     * A worker over any generator, paid through {@code payments} (e.g. with channels on chain).
     * The credit window holds only when the generator meters with the same {@code payments}, e.g.
     * {@code new Scheduler(engine, options, payments)} or {@code new OpenAiForwarder(vertx, options,
     * payments)}: the payments are the generator's {@link org.cocoonjvm.worker.scheduler.CreditGate}.
     */
    public WorkerNode(Generator generator, WorkerOptions options, WorkerPayments payments, WorkerTls tls) {
        this.options = options;
        this.generator = generator;
        this.payments = payments;
        this.tls = tls;
    }

    @Override
    public Future<?> start() {
        generator.start();
        Submitter submitter = new Submitter(generator);
        GrpcServer grpc = GrpcServer.server(vertx, new GrpcServerOptions().setMaxMessageSize(MessageLimits.MAX_REQUEST_BYTES));
        new WorkerGrpcEndpoint(vertx, submitter, this::status, payments::ready).bind(grpc);
        metrics = new WorkerMetrics(generator::load, this::gatewayStatus, payments::status, payments::earnings,
                payments.unbilled());
        Router http = new WorkerHttpApi(vertx, submitter, generator.model(), this::status, this::gatewayStatus, payments,
                payments::earnings, metrics, options.apiKey()).router();
        // A gateway multiplexes all its streams to this worker over one HTTP/2 connection: allow many.
        // It also resets one stream for every client that disconnects. Netty's rapid-reset guard
        // (Vert.x default: 200 resets in 30 s) would take a client disconnect storm for an attack
        // and close the connection, failing every stream on it (k6-load's disconnect-storm scenario
        // found this); allow as many resets per window as streams at once.
        HttpServerOptions serverOptions = new HttpServerOptions().setHost(options.host()).setPort(options.port())
                .setInitialSettings(new Http2Settings().setMaxConcurrentStreams(MAX_STREAMS))
                .setHttp2RstFloodMaxRstFramePerWindow(MAX_STREAMS)
                // No WebSockets here (see the gateway's server options).
                .setPerFrameWebSocketCompressionSupported(false)
                .setPerMessageWebSocketCompressionSupported(false);
        Handler<HttpServerRequest> grpcEntry = tls == null ? grpc : tls.onlyGateways(grpc);
        server = (tls == null ? vertx.createHttpServer(serverOptions).connectionHandler(connection -> {
                            FlushBatching.install(connection);
                            ChunkFraming.install(connection);
                            RequestLineVersions.install(connection);
                        })
                        : tls.createServer(vertx, serverOptions))
                .requestHandler(request -> (isGrpc(request) ? grpcEntry : http).handle(request))
                .invalidRequestHandler(WorkerHttpApi::refuseUnreadable);
        if (tls != null) {
            rotationTimer = tls.startRotation(vertx);
        }
        return server.listen().compose(bound -> {
            tokenTimer = vertx.setPeriodic(TOKEN_SAVE_MS, t -> saveTokens());
            String scheme = tls == null ? "http://" : "https://";
            endpoint = scheme + options.announcedAuthority(bound.actualPort());
            String listening = scheme + options.host() + ":" + bound.actualPort();
            if (listening.equals(endpoint)) {
                log.info("worker {} serving {} on {}", options.workerId(), generator.model().id(), endpoint);
            } else {
                log.info("worker {} serving {} on {}, announced as {}", options.workerId(), generator.model().id(), listening,
                        endpoint);
            }
            if (options.gateway() == null) {
                registered.complete();
                return Future.succeededFuture();
            }
            link = new GatewayLink(vertx, tls == null ? null : tls.gatewayTransport(vertx), options.gateway(), this::hello,
                    generator::load, () -> draining, payments);
            // A failed engine refuses every request: leave the gateway, as a stopping worker does, so
            // it routes elsewhere instead of tripping its circuit breaker on this worker forever.
            generator.failure().thenRun(() -> context.runOnContext(v -> leaveGateway()));
            link.start().onComplete(registered);
            return Future.succeededFuture();
        });
    }

    /**
     * Saves the lifetime token counts off the event loop. A failure (a full disk) is logged and
     * the worker serves on: the counts are tried again at the next save, and its payments are
     * stored apart from them.
     */
    private Future<Void> saveTokens() {
        return vertx.<Void>executeBlocking(() -> {
            payments.saveTokens(generator.load());
            return null;
        }).recover(e -> {
            log.warn("worker {}: {}; the lifetime token counts stay as last saved until a save succeeds",
                    options.workerId(), e.getCause() == null ? e : e.getMessage() + " (" + e.getCause().getMessage() + ")");
            return Future.succeededFuture();
        });
    }

    private Future<Void> leaveGateway() {
        if (leaving == null) {
            leaving = link == null ? Future.succeededFuture() : link.stop().recover(e -> Future.succeededFuture());
        }
        return leaving;
    }

    /**
     * Completes when the gateway first registers this worker (at once without one); fails only
     * when the worker stopped before that. Its gateway link retries meanwhile, for as long as the
     * worker runs: {@code /status} says how it stands.
     */
    public Future<Void> registered() {
        return registered.future();
    }

    /** Where this worker stands with its gateway, as /status shows it under {@code gateway}; null without one. */
    public JsonObject gatewayStatus() {
        return link == null ? null : link.registration().toJson(options.gateway().toString());
    }

    /** Completes with the cause if the engine failed for good; the worker then only refuses requests. */
    public Future<Throwable> failure() {
        return Future.fromCompletionStage(generator.failure());
    }

    @Override
    public Future<?> stop() {
        draining = true;
        if (rotationTimer >= 0) {
            vertx.cancelTimer(rotationTimer);
        }
        vertx.cancelTimer(tokenTimer);
        // Off chain nothing is closed, and on chain only what holds more than its close costs: the
        // line says which, so an operator does not wait for small channels to close (audit M, M-3).
        String then = options.gateway() == null ? "" : !payments.onChain() ? ", then it leaves its gateway"
                : ", then it asks its gateway to close each channel holding more than its close costs, and leaves it";
        log.info("worker {} stopping: {} sequence(s) running get {} ms to finish{}", options.workerId(),
                generator.load().getRunning(), options.shutdownGraceMs(), then);
        // The generator refuses new requests from now (the gateway sends them to another worker),
        // while the gateway session stays up: running sequences are paid as they go, and the
        // channels are closed only after the last one finished or failed, so the close covers
        // every token served. Leaving first closed them while the grace still served tokens.
        Future<Void> drained = Future.fromCompletionStage(generator.shutdown(options.shutdownGraceMs()), context)
                .timeout(options.shutdownGraceMs() + 1000, TimeUnit.MILLISECONDS);
        return drained
                .eventually(this::saveTokens)  // the last tokens are counted once the generator is done
                .eventually(this::leaveGateway)
                .eventually(() -> server == null ? Future.succeededFuture() : server.shutdown(1, TimeUnit.SECONDS))
                .onComplete(stopped -> {
                    metrics.close();
                    log.info("worker {} stopped", options.workerId());
                });
    }

    /**
     * Ends the stop's grace now (an operator's second SIGTERM): sequences still running fail as
     * when the grace is over, billed for what they produced, and the stop goes on. Before the stop
     * began it does nothing. Any thread.
     */
    public void endGrace() {
        try {
            // On the context, as stop() is: queued behind it, it cannot come before the stop's own
            // shutdown(grace), which would then undo it.
            context.runOnContext(v -> {
                if (draining) {
                    generator.shutdown(0);
                }
            });
        } catch (RejectedExecutionException stoppedAlready) {
            // The event loop is gone: so is the grace.
        }
    }

    /** {@code http://host:port}, {@code https://} when attested; set once started. */
    public String endpoint() {
        return endpoint;
    }

    public ModelInfo model() {
        return generator.model();
    }

    private static boolean isGrpc(HttpServerRequest request) {
        String type = request.getHeader("content-type");
        return type != null && type.startsWith("application/grpc");
    }

    private ModelRef modelRef() {
        ModelInfo m = generator.model();
        return ModelRef.newBuilder().setName(m.name()).setHash(m.hash()).setMaxContext(m.announcedContext())
                .setChatTemplateTokens(generator.chatOverhead().templateTokens())
                .setChatMessageTokens(generator.chatOverhead().messageTokens()).build();
    }

    private Hello hello() {
        return Hello.newBuilder().setWorkerId(options.workerId()).setEndpoint(endpoint).addModels(modelRef())
                .setCapacity(generator.capacity()).setEngine(generator.engineKind())
                .setPaymentPublicKey(ByteString.copyFrom(payments.publicKey().toBytes()))
                .setPayoutAddress(payments.payoutAddress()).build();
    }

    WorkerStatus status() {
        WorkerStatus.Builder status = WorkerStatus.newBuilder().setWorkerId(options.workerId()).addModels(modelRef())
                .setLoad(generator.load()).setEngine(generator.engineKind()).setDraining(draining);
        Throwable failed = generator.failure().toCompletableFuture().getNow(null);
        return (failed == null ? status : status.setFailure(Scheduler.describe(failed))).build();
    }
}
