package org.cocoonjvm.gateway.attestation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.util.Collections;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.Hello;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A gateway without attestation registers workers from its own host only, unless told otherwise:
 * any party that reached its port could register, take every prompt by announcing a large capacity,
 * and be paid (audit L, 3). Real connections to a server on all interfaces: one over loopback, one
 * over this host's first non-loopback IPv4 address (skipped on a host without one).
 */
class UnattestedAdmissionTest {
    private Vertx vertx;
    private HttpServer server;
    private CompletableFuture<HttpConnection> accepted;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        server = vertx.createHttpServer().requestHandler(request -> {
            accepted.complete(request.connection());
            request.response().end();
        }).listen(0, "0.0.0.0").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void aWorkerOnThisHost_isAdmitted_oneFromAnotherAddress_isRefusedUnlessRemoteWorkersAreAllowed() throws Exception {
        Hello hello = Hello.newBuilder().setWorkerId("w").build();

        assertThat(WorkerAdmission.unattested(false).admit(hello, connectionFrom("127.0.0.1"))).isEqualTo(AttestationState.NONE);

        String external = externalAddress().orElse(null);
        Assumptions.assumeTrue(external != null, "this host has no non-loopback IPv4 address");
        HttpConnection remote = connectionFrom(external);
        assertThatThrownBy(() -> WorkerAdmission.unattested(false).admit(hello, remote))
                .isInstanceOfSatisfying(WorkerRefusedException.class, e -> {
                    assertThat(e.code()).isEqualTo("unattested_remote_worker");
                    assertThat(e.getMessage()).contains("--attestation", "--allow-unattested-remote-workers");
                });
        assertThat(WorkerAdmission.unattested(true).admit(hello, remote)).isEqualTo(AttestationState.NONE);
    }

    /** The server's side of a connection a client opened to {@code host}. */
    private HttpConnection connectionFrom(String host) throws Exception {
        accepted = new CompletableFuture<>();
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
        client.request(new RequestOptions().setMethod(HttpMethod.GET).setHost(host).setPort(server.actualPort()).setURI("/"))
                .compose(request -> request.send());
        return accepted.get(10, TimeUnit.SECONDS);
    }

    private static Optional<String> externalAddress() throws Exception {
        for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            if (nic.isUp() && !nic.isLoopback()) {
                for (InetAddress address : Collections.list(nic.getInetAddresses())) {
                    if (address instanceof Inet4Address && !address.isLoopbackAddress()) {
                        return Optional.of(address.getHostAddress());
                    }
                }
            }
        }
        return Optional.empty();
    }
}
