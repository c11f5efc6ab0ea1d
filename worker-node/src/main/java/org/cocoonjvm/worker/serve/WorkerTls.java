package org.cocoonjvm.worker.serve;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.grpc.common.GrpcStatus;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.ratls.RaTlsTrustManager;
import org.cocoonjvm.protocol.transport.ChunkFraming;
import org.cocoonjvm.protocol.transport.FlushBatching;
import org.cocoonjvm.protocol.transport.RequestLineVersions;

/**
 * A worker's attestation: its one port serves TLS with its RA-TLS certificate, asking (not
 * requiring) a client certificate so operators can still reach the OpenAI API with a key; the
 * gRPC {@code Worker} service answers only on connections whose peer proved, with its own
 * RA-TLS certificate, to be a gateway the worker's gateway policy accepts. The link to the
 * gateway is mutual RA-TLS too. The policy lives in the {@link RaTlsNode}'s peer verifier.
 */
public final class WorkerTls {
    private final RaTlsNode node;
    private final Consumer<RaTlsTrustManager.Outcome> outcomes;
    /** Connections whose peer is an accepted gateway; owned by their event loops, read by requests on them. */
    private final Set<HttpConnection> gateways = ConcurrentHashMap.newKeySet();

    /**
     * @param node     this worker's identity; its peer policy describes acceptable gateways
     * @param outcomes sees every handshake's verdict on a gateway (refusals are also logged); must not throw
     */
    public WorkerTls(RaTlsNode node, Consumer<RaTlsTrustManager.Outcome> outcomes) {
        this.node = Objects.requireNonNull(node, "node");
        this.outcomes = Objects.requireNonNull(outcomes, "outcomes");
    }

    public WorkerTls(RaTlsNode node) {
        this(node, outcome -> {});
    }

    public String tee() {
        return node.tee();
    }

    /** The worker's server, TLS with client auth REQUEST; each connection's peer checked once when it opens. */
    HttpServer createServer(Vertx vertx, HttpServerOptions options) {
        return vertx.createHttpServer(node.server(options, ClientAuth.REQUEST, outcomes))
                .connectionHandler(conn -> {
                    FlushBatching.install(conn);
                    ChunkFraming.install(conn);
                    RequestLineVersions.install(conn);
                    node.admit(vertx, conn, () -> gateways.remove(conn)).ifPresent(gateway -> gateways.add(conn));
                });
    }

    /** Passes gRPC calls on gateway connections to {@code grpc}; refuses any other with UNAUTHENTICATED. */
    Handler<HttpServerRequest> onlyGateways(Handler<HttpServerRequest> grpc) {
        return request -> {
            if (gateways.contains(request.connection())) {
                grpc.handle(request);
            } else {
                // A trailers-only gRPC answer: status in the one HEADERS frame.
                request.response().putHeader("content-type", "application/grpc")
                        .putHeader("grpc-status", String.valueOf(GrpcStatus.UNAUTHENTICATED.code))
                        .putHeader("grpc-message", "the Worker service needs a gateway's RA-TLS certificate accepted by this worker's policy")
                        .end();
            }
        };
    }

    /** The transport of the link to the gateway: RA-TLS both ways, each new connection verified. */
    HttpClient gatewayTransport(Vertx vertx) {
        return vertx.httpClientBuilder().with(node.grpcClient(outcomes))
                .withConnectHandler(conn -> node.admit(vertx, conn, () -> { })).build();
    }

    long startRotation(Vertx vertx) {
        return node.startRotation(vertx);
    }
}
