package org.cocoonjvm.attest.ratls;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.time.Clock;
import org.cocoonjvm.attest.MutableClock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.tee.DevTee;
import org.junit.jupiter.api.Test;

/** A node's identity rotation, verification deadline and published evidence, on a clock the test moves. */
class RaTlsNodeTest {
  static final Policy DEV_ANY = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);

  @Test
  void certificateRotatesAtHalfItsValidity_andPeersAcceptTheNewOne() throws Exception {
    MutableClock clock = new MutableClock(Instant.now().truncatedTo(ChronoUnit.SECONDS));
    DevTee tee = DevTee.generate(clock);
    RaTlsNode node = RaTlsNode.dev(tee, DEV_ANY, clock);
    RaTlsIdentity first = node.keys().identity();

    clock.advance(Duration.ofHours(11));
    assertThat(node.rotateIfDue()).isFalse();
    assertThat(node.keys().identity()).isSameAs(first);

    clock.advance(Duration.ofHours(2));
    assertThat(node.rotateIfDue()).isTrue();
    RaTlsIdentity second = node.keys().identity();
    assertThat(second.notAfter()).isEqualTo(clock.instant().plus(RaTlsIdentity.DEFAULT_VALIDITY));
    assertThat(node.peers().verify(new java.security.cert.X509Certificate[] {second.certificate()}).attestation().accepted())
        .isTrue();
  }

  @Test
  void verifiedUntil_isTheEarliestOfCertificateExpiryCollateralAndCacheLifetime() throws Exception {
    MutableClock clock = new MutableClock(Instant.now().truncatedTo(ChronoUnit.SECONDS));
    RaTlsNode node = RaTlsNode.dev(DevTee.generate(clock), DEV_ANY, clock);
    RaTlsPeer peer = node.peers().verify(new java.security.cert.X509Certificate[] {node.keys().identity().certificate()});
    // Dev collateral lasts 30 days and the certificate one: the verifier's 1 h cache bounds it.
    assertThat(node.peers().verifiedUntil(peer)).isEqualTo(clock.instant().plus(node.peers().maxTtl()));
    clock.set(node.keys().identity().notAfter().minus(Duration.ofMinutes(10)));
    assertThat(node.peers().verifiedUntil(peer)).isEqualTo(node.keys().identity().notAfter());
  }

  @Test
  void evidence_namesTheDevTee_andItsOwnQuoteVerifies() throws Exception {
    MutableClock clock = new MutableClock(Instant.now().truncatedTo(ChronoUnit.SECONDS));
    DevTee tee = DevTee.generate(clock);
    JsonObject e = RaTlsNode.dev(tee, DEV_ANY, clock).evidence();
    assertThat(e.getString("tee")).isEqualTo("dev (not hardware-backed)");
    assertThat(e.getJsonObject("attestation").getBoolean("accepted")).isTrue();
    assertThat(e.getJsonObject("attestation").getString("image_hash")).hasSize(64);
    assertThat(e.getString("dev_root_pem")).isEqualTo(tee.rootPem());
    assertThat(e.getJsonObject("collateral")).isEqualTo(new JsonObject(tee.collateralJson()));
  }

  @Test
  void anAcceptedConnection_isVerifiedAgainWhenDue_andShutDownOnceItsPeerNoLongerPasses() throws Exception {
    Clock clock = Clock.systemUTC();
    DevTee tee = DevTee.generate(clock);
    RaTlsNode server = RaTlsNode.dev(tee, DEV_ANY, clock);
    Vertx vertx = Vertx.vertx();
    try {
      CountDownLatch closed = new CountDownLatch(1);
      AtomicReference<RaTlsPeer> admitted = new AtomicReference<>();
      int port = vertx.createHttpServer(server.server(new HttpServerOptions().setHost("127.0.0.1").setPort(0),
              ClientAuth.REQUIRED, o -> {}))
          .connectionHandler(conn -> server.admit(vertx, conn, closed::countDown).ifPresent(admitted::set))
          .requestHandler(req -> req.response().end("ok")).listen().await().actualPort();
      // A client whose certificate expires in about two seconds: due then, and refused (cert_expired).
      RaTlsIdentity shortLived = RaTlsIdentity.create(tee, clock, Duration.ofSeconds(2), null, NodeConfig.NONE);
      HttpClient client = vertx.createHttpClient(RaTlsVertx.client(new HttpClientOptions().setKeepAlive(true),
          new RaTlsKeyManager(shortLived), new RaTlsTrustManager(RaTlsNode.dev(tee, DEV_ANY, clock).peers())));
      String body = ClientChains.onContext(vertx, () -> client.request(HttpMethod.GET, port, "127.0.0.1", "/")
          .compose(r -> r.send().compose(resp -> resp.body()))).await(30, TimeUnit.SECONDS).toString();
      assertThat(body).isEqualTo("ok");
      assertThat(admitted.get()).isNotNull();
      assertThat(server.peers().verifiedUntil(admitted.get())).isEqualTo(shortLived.notAfter());
      assertThat(closed.await(20, TimeUnit.SECONDS)).as("connection shut down after the certificate expired").isTrue();
    } finally {
      vertx.close().await();
    }
  }
}
