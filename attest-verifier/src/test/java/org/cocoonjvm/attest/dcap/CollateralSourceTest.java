package org.cocoonjvm.attest.dcap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Collateral sources against a real Vert.x HTTP server on loopback that serves dcap-qvl's
 * {@code tdx_quote} collateral split into PCS v4 responses: JSON bodies around the exact signed
 * text, URL-encoded PEM issuer-chain headers, DER (PCK) and hex (PCCS root) CRLs.
 */
class CollateralSourceTest {
  static final Instant NOW = Instant.parse("2025-07-19T10:00:34Z");
  /** The case's collateral window ends here: the earliest nextUpdate (PCK CRL). */
  static final Instant EXPIRY = Instant.parse("2025-07-19T10:00:35Z");
  static final String QUOTE = "dcap-qvl/tdx_quote";

  Vertx vertx;
  HttpServer server;
  JsonObject fixture;
  final Map<String, AtomicInteger> hits = new ConcurrentHashMap<>();
  volatile boolean dropChainHeader;
  volatile int forcedStatus;
  HttpClient http = HttpClient.newHttpClient();

  @BeforeEach
  void startPcs() throws Exception {
    fixture = new JsonObject(Files.readString(DcapFixtures.dir().resolve("dcap-qvl/tdx_quote_collateral.json")));
    vertx = Vertx.vertx();
    server = vertx.createHttpServer().requestHandler(this::serve).listen(0, "127.0.0.1").await();
  }

  @AfterEach
  void stop() {
    vertx.close().await();
    http.close();
  }

  URI base() {
    return URI.create("http://127.0.0.1:" + server.actualPort());
  }

  private void serve(HttpServerRequest req) {
    hits.computeIfAbsent(req.path(), p -> new AtomicInteger()).incrementAndGet();
    var resp = req.response();
    if (forcedStatus != 0) {
      resp.setStatusCode(forcedStatus).end();
      return;
    }
    switch (req.path()) {
      case "/tdx/certification/v4/tcb" -> {
        if (!"B0C06F000000".equalsIgnoreCase(req.getParam("fmspc"))) {
          resp.setStatusCode(404).end();
          return;
        }
        chain(resp, "TCB-Info-Issuer-Chain", "tcb_info_issuer_chain");
        resp.end("{\n  \"tcbInfo\": " + fixture.getString("tcb_info") + ",\n  \"signature\": \""
            + fixture.getString("tcb_info_signature") + "\"\n}");
      }
      case "/tdx/certification/v4/qe/identity" -> {
        chain(resp, "SGX-Enclave-Identity-Issuer-Chain", "qe_identity_issuer_chain");
        resp.end("{\"enclaveIdentity\":" + fixture.getString("qe_identity") + ",\"signature\":\""
            + fixture.getString("qe_identity_signature") + "\"}");
      }
      case "/sgx/certification/v4/pckcrl" -> {
        if (!"platform".equals(req.getParam("ca")) || !"der".equals(req.getParam("encoding"))) {
          resp.setStatusCode(404).end();
          return;
        }
        chain(resp, "SGX-PCK-CRL-Issuer-Chain", "pck_crl_issuer_chain");
        resp.end(Buffer.buffer(HexFormat.of().parseHex(fixture.getString("pck_crl"))));
      }
      // PCCS serves the root CA CRL hex-encoded; Intel's certificate site serves DER.
      case "/sgx/certification/v4/rootcacrl" -> resp.end(fixture.getString("root_ca_crl"));
      case "/IntelSGXRootCA.der" -> resp.end(Buffer.buffer(HexFormat.of().parseHex(fixture.getString("root_ca_crl"))));
      default -> resp.setStatusCode(404).end();
    }
  }

  private void chain(io.vertx.core.http.HttpServerResponse resp, String header, String field) {
    if (!dropChainHeader) resp.putHeader(header, URLEncoder.encode(fixture.getString(field), StandardCharsets.UTF_8));
  }

  PcsCollateralSource pccs() {
    return PcsCollateralSource.pccs(http, base(), Duration.ofSeconds(5));
  }

  static VerifiedSignatures signatures() throws Exception {
    return QuoteSignatureVerifier.create(DcapFixtures.intelRoot(), Clock.fixed(NOW, ZoneOffset.UTC))
        .verify(QuoteParser.parse(DcapFixtures.quote(QUOTE)));
  }

  static TcbVerdict verifyWith(Collateral c, VerifiedSignatures sigs) throws Exception {
    return TcbMatcher.match(CollateralVerifier.create(DcapFixtures.intelRoot().getPublicKey(),
        Clock.fixed(NOW, ZoneOffset.UTC)).verify(c, sigs));
  }

  @Test
  void pccs_servesCollateralThatVerifiesTheQuote() throws Exception {
    VerifiedSignatures sigs = signatures();
    CollateralKey key = CollateralKey.of(sigs);
    assertThat(key).isEqualTo(new CollateralKey(CollateralKey.Tee.TDX, "b0c06f000000", CollateralKey.PckCa.PLATFORM));
    Collateral c = pccs().fetch(key);
    assertThat(c.tcbInfoJson()).isEqualTo(fixture.getString("tcb_info"));
    assertThat(c.qeIdentityJson()).isEqualTo(fixture.getString("qe_identity"));
    assertThat(verifyWith(c, sigs).status()).isEqualTo(TcbStatus.UP_TO_DATE);
  }

  @Test
  void pcsWithDerRootCrl_verifiesToo() throws Exception {
    VerifiedSignatures sigs = signatures();
    var pcs = PcsCollateralSource.create(http, base(), base().resolve("/IntelSGXRootCA.der"), Duration.ofSeconds(5));
    assertThat(verifyWith(pcs.fetch(CollateralKey.of(sigs)), sigs).status()).isEqualTo(TcbStatus.UP_TO_DATE);
  }

  CollateralCache cache(Clock clock) {
    return new CollateralCache(pccs(), CollateralVerifier.create(DcapFixtures.intelRoot().getPublicKey(), clock), clock);
  }

  @Test
  void cache_servesUntilTheEarliestNextUpdate_thenRefetches() throws Exception {
    MutableClock clock = new MutableClock(NOW);
    CollateralCache cache = cache(clock);
    VerifiedSignatures sigs = signatures();
    CollateralKey key = CollateralKey.of(sigs);
    TrustedCollateral first = cache.get(key);
    assertThat(CollateralCache.expires(first)).isEqualTo(EXPIRY);
    assertThat(cache.get(key)).isSameAs(first);
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(1);
    assertThat(TcbMatcher.match(CollateralVerifier.create(DcapFixtures.intelRoot().getPublicKey(), clock)
        .verify(first, sigs)).status()).isEqualTo(TcbStatus.UP_TO_DATE);
    clock.now = EXPIRY;
    TrustedCollateral second = cache.get(key);
    assertThat(second).isNotSameAs(first);
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(2);
    assertThat(hits.get("/sgx/certification/v4/pckcrl")).hasValue(2);
  }

  @Test
  void cache_keepsKeysApart_andKeepsNothingThatFailsTrust() throws Exception {
    CollateralCache cache = cache(new MutableClock(NOW));
    cache.get(CollateralKey.of(signatures()));
    assertThatThrownBy(() -> cache.get(new CollateralKey(CollateralKey.Tee.TDX, "b0c06f000000", CollateralKey.PckCa.PROCESSOR)))
        .isInstanceOf(CollateralFetchException.class).hasMessageStartingWith("collateral_not_found");
    var otherRoot = TestPki.ecKey().getPublic();
    MutableClock clock = new MutableClock(NOW);
    CollateralCache untrusting = new CollateralCache(pccs(), CollateralVerifier.create(otherRoot, clock), clock);
    CollateralKey key = CollateralKey.of(signatures());
    int before = hits.get("/tdx/certification/v4/tcb").get();
    for (int i = 0; i < 2; i++) {
      assertThatThrownBy(() -> untrusting.get(key)).isInstanceOf(VerificationException.class);
    }
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(before + 2);
  }

  @Test
  void httpFailures_haveTheirOwnCodes() throws Exception {
    CollateralKey key = CollateralKey.of(signatures());
    assertCode(() -> pccs().fetch(new CollateralKey(CollateralKey.Tee.TDX, "00906ed50000", CollateralKey.PckCa.PLATFORM)),
        CollateralFetchException.Reason.NOT_FOUND);
    dropChainHeader = true;
    assertCode(() -> pccs().fetch(key), CollateralFetchException.Reason.MALFORMED);
    dropChainHeader = false;
    forcedStatus = 503;
    assertCode(() -> pccs().fetch(key), CollateralFetchException.Reason.HTTP_STATUS);
    forcedStatus = 0;
    var closed = PcsCollateralSource.pccs(http, URI.create("http://127.0.0.1:1"), Duration.ofSeconds(2));
    assertCode(() -> closed.fetch(key), CollateralFetchException.Reason.UNAVAILABLE);
  }

  @Test
  void offlineBundles_areIndexedByTheirOwnKey() throws Exception {
    OfflineCollateralSource offline = OfflineCollateralSource.of(List.of(
        Files.readString(DcapFixtures.dir().resolve("dcap-qvl/tdx_quote_collateral.json")),
        Files.readString(DcapFixtures.dir().resolve("dcap-qvl/sgx_quote_collateral.json"))));
    VerifiedSignatures sigs = signatures();
    assertThat(verifyWith(offline.fetch(CollateralKey.of(sigs)), sigs).status()).isEqualTo(TcbStatus.UP_TO_DATE);
    assertCode(() -> offline.fetch(new CollateralKey(CollateralKey.Tee.SGX, "b0c06f000000", CollateralKey.PckCa.PLATFORM)),
        CollateralFetchException.Reason.NOT_FOUND);
  }

  @Test
  void rawMember_keepsTheExactText() {
    String inner = "{ \"a\" : [1, {\"b\":\"}\\\"\"}], \"c\":2 }";
    assertThat(RawJsonMember.of("{\"x\":\"y\", \"tcbInfo\":" + inner + " ,\"signature\":\"00\"}", "tcbInfo")).isEqualTo(inner);
    assertThatThrownBy(() -> RawJsonMember.of("{\"x\":1}", "tcbInfo")).isInstanceOf(IllegalArgumentException.class);
  }

  interface Call {
    void run() throws Exception;
  }

  static void assertCode(Call call, CollateralFetchException.Reason reason) {
    assertThatThrownBy(call::run).isInstanceOf(CollateralFetchException.class)
        .satisfies(e -> assertThat(((CollateralFetchException) e).reason()).as(e.getMessage()).isEqualTo(reason));
  }

  static final class MutableClock extends Clock {
    volatile Instant now;

    MutableClock(Instant now) {
      this.now = now;
    }

    @Override
    public Instant instant() {
      return now;
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }
  }
}
