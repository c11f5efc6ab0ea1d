package org.cocoonjvm.attest.ratls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.cocoonjvm.attest.MutableClock;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * One client, several connections: JSSE resumes the TLS 1.3 session, so the trust manager runs
 * only on the first; the per-connection check ({@link RaTlsNode#admit}) still sees every peer and
 * refuses one that expired.
 */
class RaTlsResumptionTest {
  Vertx vertx = Vertx.vertx();

  @AfterEach
  void stop() throws Exception {
    RaTlsHandshakeTest.await(vertx.close());
  }

  @Test
  void resumedSessionsSkipTheTrustManagerButNotTheConnectionCheck() throws Exception {
    MutableClock clock = new MutableClock(RaTlsHandshakeTest.CLOCK.instant());
    RaTlsNode node = RaTlsNode.dev(RaTlsHandshakeTest.TEE, RaTlsHandshakeTest.ONLY_DEFAULT_MRTD, clock);
    List<RaTlsTrustManager.Outcome> handshakes = new CopyOnWriteArrayList<>();
    HttpServer server = vertx.createHttpServer(node.server(new HttpServerOptions().setHost("127.0.0.1").setPort(0),
            ClientAuth.REQUIRED, handshakes::add))
        .connectionHandler(conn -> node.admit(vertx, conn, () -> {}))
        .requestHandler(req -> req.response().end("ok"));
    int port = RaTlsHandshakeTest.await(server.listen()).actualPort();

    HttpClient client = vertx.createHttpClient(RaTlsVertx.client(new HttpClientOptions().setKeepAlive(false),
        new RaTlsKeyManager(RaTlsIdentity.create(RaTlsHandshakeTest.TEE, RaTlsHandshakeTest.CLOCK)),
        new RaTlsTrustManager(RaTlsHandshakeTest.verifier(RaTlsHandshakeTest.CLOCK))));
    for (int i = 0; i < 3; i++) {
      assertThat(get(client, port)).isEqualTo("ok");
    }
    assertThat(handshakes).as("full handshakes").hasSize(1);
    assertThat(node.peers().cacheHits() + node.peers().cacheMisses()).as("peer verifications").isEqualTo(4);

    clock.advance(Duration.ofDays(2));
    assertThatThrownBy(() -> get(client, port)).isNotNull();
    assertThat(handshakes).hasSize(1);
  }

  private String get(HttpClient client, int port) throws Exception {
    return RaTlsHandshakeTest.await(ClientChains.onContext(vertx, () -> client.request(HttpMethod.GET, port, "127.0.0.1", "/")
        .compose(req -> req.send().compose(r -> r.body())).map(b -> b.toString())));
  }
}
