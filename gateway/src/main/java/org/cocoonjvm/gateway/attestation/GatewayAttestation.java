package org.cocoonjvm.gateway.attestation;

import io.netty.handler.ssl.NotSslRecordException;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.RoutingContext;
import java.time.Clock;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.policy.PolicyViolation;
import org.cocoonjvm.attest.ratls.RaTlsException;
import org.cocoonjvm.attest.ratls.RaTlsIdentity;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.ratls.RaTlsPeer;
import org.cocoonjvm.attest.ratls.RaTlsTrustManager;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.transport.FlushBatching;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's attestation: workers reach it on a separate port ({@link #workerPort()}) over
 * mutual RA-TLS and are verified there against the worker policy (image, TCB, and at Hello the
 * models' {@code name@hash}); its gRPC client to workers verifies them again on every new
 * connection; refusals from either side land in {@link #refused()}; and it publishes its own
 * evidence for clients at {@code GET /v1/attestation}. The client-facing port stays plain HTTP so
 * ordinary OpenAI clients keep working.
 */
public final class GatewayAttestation implements WorkerAdmission {
    private static final Logger log = LoggerFactory.getLogger(GatewayAttestation.class);
    private final RaTlsNode node;
    private final Policy workerPolicy;
    private final int workerPort;
    private final RefusedWorkers refused;
    /** Evidence verifies the node's own quote: done once per certificate, not per request. */
    private final AtomicReference<Published> published = new AtomicReference<>();

    private record Published(RaTlsIdentity identity, String json) {}

    /**
     * @param node       this gateway's identity; its peer policy is the worker policy (models checked at Hello too)
     * @param workerPort where workers register; 0 picks a free one
     */
    public GatewayAttestation(RaTlsNode node, int workerPort, Clock clock) {
        if (workerPort < 0 || workerPort > 65535) {
            throw new IllegalArgumentException("worker port out of range: " + workerPort);
        }
        this.node = Objects.requireNonNull(node, "node");
        this.workerPolicy = node.peers().policy();
        this.workerPort = workerPort;
        this.refused = new RefusedWorkers(clock);
    }

    public int workerPort() {
        return workerPort;
    }

    public RefusedWorkers refused() {
        return refused;
    }

    public String tee() {
        return node.tee();
    }

    /** The worker-facing listener: client certificates required, each connection verified. */
    public Future<HttpServer> listenForWorkers(Vertx vertx, String host, Handler<HttpServerRequest> sessions) {
        HttpServerOptions options = node.server(new HttpServerOptions().setHost(host).setPort(workerPort),
                ClientAuth.REQUIRED, this::handshake);
        return vertx.createHttpServer(options).connectionHandler(conn -> node.admit(vertx, conn, () -> { }))
                .exceptionHandler(this::handshakeFailed).requestHandler(sessions).listen();
    }

    /**
     * The gRPC transport to workers: RA-TLS both ways, each new connection verified (resumed
     * sessions skip the handshake check).
     *
     * @param connected also runs for each new connection, on its event loop
     */
    public HttpClient workerClient(Vertx vertx, Handler<HttpConnection> connected) {
        return vertx.httpClientBuilder().with(node.grpcClient(this::handshake))
                .withConnectHandler(conn -> {
                    FlushBatching.install(conn);
                    node.admit(vertx, conn, () -> { });
                    connected.handle(conn);
                }).build();
    }

    public long startRotation(Vertx vertx) {
        return node.startRotation(vertx);
    }

    /** At Hello on the worker port: the connection's peer (a cache hit) and the announced models against the policy. */
    @Override
    public AttestationState admit(Hello hello, HttpConnection connection) throws WorkerRefusedException {
        RaTlsPeer peer;
        try {
            peer = node.peers().verify(connection.sslSession());
        } catch (RaTlsException e) {
            AttestationResult a = e.attestation().orElse(null);
            throw WorkerRefusedException.attestation(e.reason().code(), e.detail(), a == null ? null : tee(a), a == null ? null
                    : a.imageHash().orElse(null));
        }
        List<PolicyViolation> models = workerPolicy.checkModels(
                hello.getModelsList().stream().map(m -> m.getName() + "@" + m.getHash()).toList());
        AttestationResult a = peer.attestation();
        if (!models.isEmpty()) {
            // The details only: the code is the refusal's reason, and saying it again made
            // "model_not_allowed: model_not_allowed: ..." in the worker's log.
            throw WorkerRefusedException.attestation("model_not_allowed",
                    String.join("; ", models.stream().map(PolicyViolation::detail).toList()), tee(a), a.imageHash().orElse(null));
        }
        return AttestationState.of(peer);
    }

    /**
     * {@code GET /v1/attestation}: public, no key needed, so clients can check the gateway before
     * sending one. Building it verifies the gateway's own quote (and may fetch collateral), so that
     * runs off the event loop, once per certificate.
     */
    public void serveEvidence(RoutingContext ctx) {
        RaTlsIdentity current = node.keys().identity();
        Published p = published.get();
        Future<String> json = p != null && p.identity() == current ? Future.succeededFuture(p.json())
                : ctx.vertx().executeBlocking(() -> {
                    String built = node.evidence().encode();
                    published.set(new Published(current, built));
                    return built;
                });
        json.onComplete(done -> {
            if (done.succeeded()) {
                ctx.response().putHeader("Content-Type", "application/json").end(done.result());
            } else {
                ctx.fail(done.cause());
            }
        });
    }

    private void handshake(RaTlsTrustManager.Outcome outcome) {
        if (!outcome.accepted()) {
            RaTlsException e = outcome.refusal();
            AttestationResult a = e.attestation().orElse(null);
            refused.add(outcome.remote(), null, e.reason().code(), e.getMessage(), a == null ? null : tee(a),
                    a == null ? null : a.imageHash().orElse(null));
        }
    }

    /**
     * A TLS handshake on the worker port failed for something other than a refused certificate
     * (which {@link #handshake} recorded with its peer): most often a worker without attestation
     * speaking plaintext HTTP/2 here, which used to leave no trace on the gateway. Vert.x reports
     * it without the peer's address, so the list and the once-a-minute log line say {@code unknown}.
     */
    private void handshakeFailed(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof RaTlsException) {
                return;
            }
        }
        boolean plaintext = failure instanceof NotSslRecordException;
        String code = plaintext ? "tls_required" : "tls_handshake_failed";
        String message = plaintext ? "plaintext on the RA-TLS worker port: a worker without --attestation dials it?"
                : failure.getClass().getSimpleName() + ": " + failure.getMessage();
        if (refused.add("unknown", null, code, message, null, null)) {
            log.warn("a connection to the worker port failed its TLS handshake ({}): {}", code, message);
        }
    }

    private static String tee(AttestationResult a) {
        return a.tee().map(t -> t.label()).orElse(null);
    }
}
