package org.cocoonjvm.attest.ratls;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.net.SocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.cocoonjvm.attest.MutableClock;
import org.cocoonjvm.attest.tee.DevTee;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The client proxy in front of a dev-TEE gateway on loopback, on a clock the test moves. */
class RaTlsClientProxyTest {
  private final Vertx vertx = Vertx.vertx();

  @AfterEach
  void stop() {
    vertx.close().await();
  }

  /**
   * A keep-alive connection through the proxy outlives its gateway's certificate: it is verified
   * again when due and closed once the gateway no longer passes, and the next connection, not
   * resuming that session, sees the gateway's new certificate. It was checked only at its opening,
   * and kept carrying prompts to that gateway (audit K, K-5).
   */
  @Test
  void aLongLivedConnection_isClosedOnceItsGatewayNoLongerPasses_andTheNextOneHandshakesAfresh() throws Exception {
    MutableClock clock = new MutableClock(Instant.now().truncatedTo(ChronoUnit.SECONDS));
    DevTee tee = DevTee.generate(clock);
    RaTlsNode gateway = RaTlsNode.dev(tee, RaTlsNodeTest.DEV_ANY, clock);
    int gatewayPort = vertx.createHttpServer(gateway.server(new HttpServerOptions().setHost("127.0.0.1").setPort(0),
            ClientAuth.NONE, outcome -> {}))
        .requestHandler(req -> req.response().end("ok")).listen().await().actualPort();
    RaTlsClientProxy proxy = new RaTlsClientProxy(vertx, RaTlsNode.dev(tee, RaTlsNodeTest.DEV_ANY, clock).peers(),
        SocketAddress.inetSocketAddress(gatewayPort, "127.0.0.1"));
    int port = proxy.listen("127.0.0.1", 0).await();
    HttpClient client = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true), new PoolOptions().setHttp1MaxSize(1));

    // Opened shortly before the certificate's notAfter: its check is due then, not in an hour; while the
    // clock stands still, again as long after each check. 10 s: the timer runs in real time, and on a
    // loaded CI machine the first handshake and the idle second below took longer than 5.
    clock.set(gateway.keys().identity().notAfter().minusSeconds(10));
    AtomicReference<HttpConnection> connection = new AtomicReference<>();
    assertThat(get(client, port, connection)).isEqualTo("ok");
    CountDownLatch closed = new CountDownLatch(1);
    connection.get().closeHandler(v -> closed.countDown());
    assertThat(closed.await(1, TimeUnit.SECONDS)).as("closed while the gateway still passes").isFalse();
    assertThat(get(client, port, new AtomicReference<>())).as("the same connection, still verified").isEqualTo("ok");

    clock.advance(Duration.ofSeconds(20));
    assertThat(closed.await(30, TimeUnit.SECONDS)).as("closed once the gateway's certificate expired").isTrue();

    assertThat(gateway.rotateIfDue()).isTrue();
    // A client of its own: the first one's pool may not have dropped the closed connection yet when
    // the close handler above ran, and sent the request on it (HttpClosedException in one CI run).
    HttpClient next = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true), new PoolOptions().setHttp1MaxSize(1));
    assertThat(get(next, port, new AtomicReference<>())).as("a full handshake, with the new certificate").isEqualTo("ok");
  }

  private String get(HttpClient client, int port, AtomicReference<HttpConnection> connection) throws Exception {
    return ClientChains.onContext(vertx, () -> client.request(HttpMethod.GET, port, "127.0.0.1", "/").compose(request -> {
      connection.set(request.connection());
      return request.send().compose(response -> response.body());
    }).map(Object::toString)).await(30, TimeUnit.SECONDS);
  }
}
