package org.cocoonjvm.attest.ratls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.policy.AllowList;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.policy.PolicyViolation;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.attest.tee.QuoteSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Real loopback mutual TLS 1.3 between a Vert.x HttpServer and HttpClient, both presenting
 * dev-TEE RA-TLS certificates with Ed25519 keys, through the JDK's JSSE.
 */
class RaTlsHandshakeTest {
  static final Clock CLOCK = Clock.fixed(Instant.now().truncatedTo(ChronoUnit.SECONDS), ZoneOffset.UTC);
  static final DevTee TEE = DevTee.generate(CLOCK);
  static final DevTee OTHER_IMAGE = TEE.withMeasurements(TEE.measurements().withMrTd(new byte[48]));
  static final Policy ONLY_DEFAULT_MRTD = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true)
      .withMrtd(AllowList.of(Set.of(TEE.measurements().mrTdHex())));

  Vertx vertx;
  final List<RaTlsTrustManager.Outcome> serverSaw = new CopyOnWriteArrayList<>();
  final List<RaTlsTrustManager.Outcome> clientSaw = new CopyOnWriteArrayList<>();
  RaTlsVerifier serverVerifier;
  RaTlsVerifier clientVerifier;
  RaTlsKeyManager serverKeys;
  int port;

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    serverVerifier = verifier(CLOCK);
    serverKeys = new RaTlsKeyManager(RaTlsIdentity.create(TEE, CLOCK));
    HttpServerOptions opts = RaTlsVertx.server(new HttpServerOptions().setHost("127.0.0.1").setPort(0), serverKeys,
        new RaTlsTrustManager(serverVerifier, serverSaw::add));
    HttpServer server = vertx.createHttpServer(opts).requestHandler(req -> req.response().end(
        "attested " + req.connection().sslSession().getProtocol() + " " + req.connection().sslSession().getCipherSuite()));
    port = await(server.listen()).actualPort();
    clientVerifier = verifier(CLOCK);
  }

  @AfterEach
  void stop() throws Exception {
    await(vertx.close());
  }

  static RaTlsVerifier verifier(Clock clock) {
    AttestationVerifier v = AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), clock);
    return new RaTlsVerifier(v, CollateralSource.fixed(TEE.collateral()), ONLY_DEFAULT_MRTD);
  }

  static <T> T await(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  /** One request on a fresh client (fresh TLS context: no session resumption, a full handshake). */
  String get(RaTlsIdentity clientIdentity) throws Exception {
    HttpClientOptions opts = RaTlsVertx.client(new HttpClientOptions(), new RaTlsKeyManager(clientIdentity),
        new RaTlsTrustManager(clientVerifier, clientSaw::add));
    HttpClient client = vertx.createHttpClient(opts);
    try {
      return await(ClientChains.onContext(vertx, () -> client.request(HttpMethod.GET, port, "127.0.0.1", "/")
          .compose(req -> req.send().compose(resp -> resp.body())).map(b -> b.toString())));
    } finally {
      await(client.close());
    }
  }

  @Test
  void mutualTlsWithDevTeeCertificatesSucceedsAndTheSecondConnectionHitsTheCache() throws Exception {
    assertThat(get(RaTlsIdentity.create(TEE, CLOCK))).isIn(
        "attested TLSv1.3 TLS_AES_128_GCM_SHA256", "attested TLSv1.3 TLS_AES_256_GCM_SHA384");
    assertThat(serverSaw).singleElement().satisfies(o -> {
      assertThat(o.accepted()).isTrue();
      assertThat(o.side()).isEqualTo("client");
      assertThat(o.peer().attestation().tee().orElseThrow().label()).isEqualTo("dev (not hardware-backed)");
      assertThat(o.peer().cached()).isFalse();
      assertThat(o.peer().certificate().getPublicKey().getAlgorithm()).isIn("Ed25519", "EdDSA");
    });
    assertThat(clientSaw).singleElement().satisfies(o -> assertThat(o.side()).isEqualTo("server"));

    // Same client certificate again on a new connection: the quote's attestation is cached.
    RaTlsIdentity second = RaTlsIdentity.create(TEE, CLOCK);
    assertThat(get(second)).startsWith("attested TLSv1.3");
    assertThat(get(second)).startsWith("attested TLSv1.3");
    assertThat(serverVerifier.cacheHits()).isEqualTo(1);
    assertThat(serverVerifier.cacheMisses()).isEqualTo(2);
    assertThat(clientVerifier.cacheHits()).isEqualTo(2);
    assertThat(serverSaw.get(2).peer().cached()).isTrue();
  }

  @Test
  void rotatingTheServerIdentityTakesEffectOnTheNextHandshake() throws Exception {
    RaTlsIdentity client = RaTlsIdentity.create(TEE, CLOCK);
    get(client);
    RaTlsIdentity next = RaTlsIdentity.create(TEE, CLOCK);
    serverKeys.rotate(next);
    get(client);
    assertThat(clientSaw).hasSize(2);
    assertThat(clientSaw.get(0).peer().certificate()).isNotEqualTo(next.certificate());
    assertThat(clientSaw.get(1).peer().certificate()).isEqualTo(next.certificate());
  }

  @Test
  void peerWhoseQuoteFailsPolicyIsRefusedInTheHandshake() throws Exception {
    assertThatThrownBy(() -> get(RaTlsIdentity.create(OTHER_IMAGE, CLOCK))).isNotNull();
    RaTlsException refusal = serverSaw.get(0).refusal();
    assertThat(refusal.reason()).isEqualTo(RaTlsException.Reason.ATTESTATION_REJECTED);
    assertThat(refusal.attestation().orElseThrow().violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.MRTD_NOT_ALLOWED);

    DevTee debug = TEE.withMeasurements(TEE.measurements().withTdAttributes(
        org.cocoonjvm.attest.quote.TdReportBody.TD_ATTR_DEBUG | org.cocoonjvm.attest.quote.TdReportBody.TD_ATTR_SEPT_VE_DISABLE));
    assertThatThrownBy(() -> get(RaTlsIdentity.create(debug, CLOCK))).isNotNull();
    assertThat(serverSaw.get(1).refusal().attestation().orElseThrow().violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.DEBUG_NOT_ALLOWED);
  }

  @Test
  void quoteBoundToAnotherKeyIsRefused() throws Exception {
    QuoteSource wrongBinding = new QuoteSource() {
      @Override
      public byte[] quote(byte[] reportData) throws org.cocoonjvm.attest.tee.QuoteSourceException {
        return TEE.quote(new byte[64]);
      }

      @Override
      public String describe() {
        return "quotes over zeros";
      }
    };
    assertThatThrownBy(() -> get(RaTlsIdentity.create(wrongBinding, CLOCK))).isNotNull();
    assertThat(serverSaw.get(0).refusal().reason()).isEqualTo(RaTlsException.Reason.REPORT_DATA_MISMATCH);
  }

  @Test
  void expiredCertificateIsRefused() throws Exception {
    Clock twoDaysAgo = Clock.offset(CLOCK, Duration.ofDays(-2));
    assertThatThrownBy(() -> get(RaTlsIdentity.create(TEE, twoDaysAgo))).isNotNull();
    assertThat(serverSaw.get(0).refusal().reason()).isEqualTo(RaTlsException.Reason.CERT_EXPIRED);
  }

  @Test
  void clientRefusesAServerOutsideItsPolicy() throws Exception {
    clientVerifier = new RaTlsVerifier(AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), CLOCK),
        CollateralSource.fixed(TEE.collateral()), Policy.MEASUREMENTS_UNCHECKED);
    assertThatThrownBy(() -> get(RaTlsIdentity.create(TEE, CLOCK))).isNotNull();
    assertThat(clientSaw.get(0).refusal().attestation().orElseThrow().violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.DEV_TEE_NOT_ALLOWED);
  }
}
