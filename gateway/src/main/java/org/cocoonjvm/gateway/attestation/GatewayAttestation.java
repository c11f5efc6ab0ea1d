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
import javax.net.ssl.SSLHandshakeException;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.policy.PolicyViolation;
import org.cocoonjvm.attest.ratls.RaTlsException;
import org.cocoonjvm.attest.ratls.RaTlsIdentity;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.ratls.RaTlsPeer;
import org.cocoonjvm.attest.ratls.RaTlsTrustManager;
import org.cocoonjvm.gateway.registry.ModelKeys;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.transport.FlushBatching;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's attestation: workers reach it on a separate port ({@link #workerPort()}) over
 * mutual RA-TLS and are verified there against the worker policy (image, TCB, and at Hello the
 * models' {@code name@hash}); its gRPC client to workers verifies them again on every new
 * connection; refusals from either side land in {@link #refused()}; and it publishes its own
 * evidence for clients at {@code GET /v1/attestation}.
 *
 * <p>The client port serves TLS with the same RA-TLS certificate ({@link ClientPort#RA_TLS}): the
 * quote in the certificate binds the key the connection is encrypted with, so a client that
 * verifies the certificate of its own connection (as {@code cocoon attest proxy} does for
 * OpenAI clients on the same host) knows the prompt reaches the attested gateway and nobody else.
 * Evidence fetched from {@code /v1/attestation} proves nothing about the connection a prompt is
 * then sent on, and over plain HTTP the host and the network read both (audit I, I-1).
 * {@link ClientPort#PLAINTEXT} is for a loopback demo, or a TLS terminator inside the same TD.
 */
public final class GatewayAttestation implements WorkerAdmission {
    private static final Logger log = LoggerFactory.getLogger(GatewayAttestation.class);
    private final RaTlsNode node;
    private final Policy workerPolicy;
    private final int workerPort;
    private final ClientPort clientPort;
    private final RefusedWorkers refused;
    /** Evidence verifies the node's own quote: done once per certificate, not per request. */
    private final AtomicReference<Published> published = new AtomicReference<>();

    private record Published(RaTlsIdentity identity, String json) {}

    /** How the client port (OpenAI API, backend gRPC, /metrics, /admin) is served. */
    public enum ClientPort {
        /** TLS 1.3 with this gateway's RA-TLS certificate; no client certificate asked for. */
        RA_TLS,
        /** Plain HTTP: prompts cross the host and the network in clear. */
        PLAINTEXT
    }

    /** The client port on RA-TLS. */
    public GatewayAttestation(RaTlsNode node, int workerPort, Clock clock) {
        this(node, workerPort, clock, ClientPort.RA_TLS);
    }

    /**
     * @param node       this gateway's identity; its peer policy is the worker policy (models checked at Hello too)
     * @param workerPort where workers register; 0 picks a free one
     */
    public GatewayAttestation(RaTlsNode node, int workerPort, Clock clock, ClientPort clientPort) {
        if (workerPort < 0 || workerPort > 65535) {
            throw new IllegalArgumentException("worker port out of range: " + workerPort);
        }
        this.node = Objects.requireNonNull(node, "node");
        this.workerPolicy = node.peers().policy();
        this.workerPort = workerPort;
        this.clientPort = Objects.requireNonNull(clientPort, "clientPort");
        this.refused = new RefusedWorkers(clock);
    }

    public ClientPort clientPort() {
        return clientPort;
    }

    /**
     * The client port's listener options, with TLS on the RA-TLS certificate (it rotates with the
     * node's) unless the client port is {@link ClientPort#PLAINTEXT}. Clients present nothing:
     * they are known by their API keys.
     */
    public HttpServerOptions clientServer(HttpServerOptions options) {
        if (clientPort == ClientPort.PLAINTEXT) {
            return options;
        }
        return node.server(options, ClientAuth.NONE, outcome -> { });
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
                .exceptionHandler(failure -> handshakeFailed("worker", failure)).requestHandler(sessions).listen();
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
                hello.getModelsList().stream().map(ModelKeys::id).toList());
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
                OpenAiResponses.json(ctx.response(), done.result());
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
     * A connection to the RA-TLS client port failed (its server's exception handler): a failed TLS
     * handshake is reported as below, most often a client that dialed it with {@code http://}, or a
     * worker without attestation; anything else is not.
     */
    public void clientHandshakeFailed(Throwable failure) {
        handshakeFailed("client", failure);
    }

    /**
     * A TLS handshake on {@code port} failed for something other than a refused certificate
     * (which {@link #handshake} recorded with its peer): most often a client speaking plaintext,
     * which nothing else on the gateway would show. Vert.x reports it without the peer's address,
     * so the list and the once-a-minute log line say {@code unknown}. The same handler gets every
     * other failure of a connection too, a reset one above all (a client aborting a stream): those
     * are no refusal, and only {@code DEBUG}.
     */
    private void handshakeFailed(String port, Throwable failure) {
        boolean plaintext = false;
        boolean handshake = false;
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof RaTlsException) {
                return;
            }
            plaintext |= t instanceof NotSslRecordException;
            handshake |= t instanceof SSLHandshakeException;
        }
        if (!plaintext && !handshake) {
            log.debug("a connection to the {} port failed: {}", port, failure.toString());
            return;
        }
        String code = plaintext ? "tls_required" : "tls_handshake_failed";
        String message = !plaintext ? "on the " + port + " port: " + failure.getClass().getSimpleName() + ": " + failure.getMessage()
                : port.equals("worker") ? "plaintext on the RA-TLS worker port: a worker without --attestation dials it?"
                : "plaintext on the RA-TLS client port: clients reach it through a client that checks its certificate"
                        + " (cocoon attest proxy), workers with --attestation on the worker port";
        if (refused.add("unknown", null, code, message, null, null)) {
            log.warn("a connection to the {} port failed its TLS handshake ({}): {}", port, code, message);
        }
    }

    private static String tee(AttestationResult a) {
        return a.tee().map(t -> t.label()).orElse(null);
    }
}
