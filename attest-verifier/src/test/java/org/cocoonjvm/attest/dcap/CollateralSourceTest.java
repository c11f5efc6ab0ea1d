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
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.cocoonjvm.attest.MutableClock;
import org.cocoonjvm.attest.quote.NeedsFixtures;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Collateral sources against a real Vert.x HTTP server on loopback that serves dcap-qvl's
 * {@code tdx_quote} collateral split into PCS v4 responses: JSON bodies around the exact signed
 * text, URL-encoded PEM issuer-chain headers, DER (PCK) and hex (PCCS root) CRLs.
 */
@NeedsFixtures
class CollateralSourceTest {
  static final Instant NOW = Instant.parse("2025-07-19T10:00:34Z");
  /** The case's collateral window ends here: the earliest nextUpdate (PCK CRL). */
  static final Instant EXPIRY = Instant.parse("2025-07-19T10:00:35Z");
  static final String QUOTE = "dcap-qvl/tdx_quote";

  Vertx vertx;
  HttpServer server;
  JsonObject fixture;
  volatile Responses responses;
  final Map<String, AtomicInteger> hits = new ConcurrentHashMap<>();
  volatile boolean dropChainHeader;
  volatile int forcedStatus;
  HttpClient http = HttpClient.newHttpClient();

  @BeforeEach
  void startPcs() throws Exception {
    fixture = new JsonObject(Files.readString(DcapFixtures.dir().resolve("dcap-qvl/tdx_quote_collateral.json")));
    responses = dcapQvl(fixture);
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

  /** What the loopback PCS answers for one FMSPC and PCK CA. */
  record Responses(String fmspc, String ca, String tcbBody, String tcbChain, String qeBody, String qeChain,
      byte[] pckCrl, String pckChain, byte[] rootCrl) {}

  /** dcap-qvl's bundle split into PCS responses, the JSON wrapped with extra whitespace. */
  static Responses dcapQvl(JsonObject f) {
    return new Responses("b0c06f000000", "platform",
        "{\n  \"tcbInfo\": " + f.getString("tcb_info") + ",\n  \"signature\": \"" + f.getString("tcb_info_signature") + "\"\n}",
        f.getString("tcb_info_issuer_chain"),
        "{\"enclaveIdentity\":" + f.getString("qe_identity") + ",\"signature\":\"" + f.getString("qe_identity_signature") + "\"}",
        f.getString("qe_identity_issuer_chain"),
        HexFormat.of().parseHex(f.getString("pck_crl")), f.getString("pck_crl_issuer_chain"),
        HexFormat.of().parseHex(f.getString("root_ca_crl")));
  }

  /** go-tdx-guest's recorded PCS responses, byte for byte (2023-06, FMSPC 50806F000000). */
  static Responses goTdxGuest() throws Exception {
    var d = DcapFixtures.dir().resolve("go-tdx-guest");
    return new Responses("50806f000000", "platform",
        Files.readString(d.resolve("sample_tcbInfo_response")), Files.readString(d.resolve("tcbinfo_issuer_chain.pem")),
        Files.readString(d.resolve("sample_qeIdentity_response")), Files.readString(d.resolve("qeidentity_issuer_chain.pem")),
        Files.readAllBytes(d.resolve("pckcrl")), Files.readString(d.resolve("pckcrl_issuer_chain.pem")),
        Files.readAllBytes(d.resolve("rootcrl.der")));
  }

  private void serve(HttpServerRequest req) {
    hits.computeIfAbsent(req.path(), p -> new AtomicInteger()).incrementAndGet();
    var resp = req.response();
    Responses r = responses;
    if (forcedStatus != 0) {
      resp.setStatusCode(forcedStatus).end();
      return;
    }
    switch (req.path()) {
      case "/tdx/certification/v4/tcb" -> {
        if (!r.fmspc().equalsIgnoreCase(req.getParam("fmspc"))) {
          resp.setStatusCode(404).end();
          return;
        }
        chain(resp, "TCB-Info-Issuer-Chain", r.tcbChain());
        resp.end(r.tcbBody());
      }
      case "/tdx/certification/v4/qe/identity" -> {
        chain(resp, "SGX-Enclave-Identity-Issuer-Chain", r.qeChain());
        resp.end(r.qeBody());
      }
      case "/sgx/certification/v4/pckcrl" -> {
        if (!r.ca().equals(req.getParam("ca")) || !"der".equals(req.getParam("encoding"))) {
          resp.setStatusCode(404).end();
          return;
        }
        chain(resp, "SGX-PCK-CRL-Issuer-Chain", r.pckChain());
        resp.end(Buffer.buffer(r.pckCrl()));
      }
      // PCCS serves the root CA CRL hex-encoded; Intel's certificate site serves DER.
      case "/sgx/certification/v4/rootcacrl" -> resp.end(HexFormat.of().formatHex(r.rootCrl()));
      case "/IntelSGXRootCA.der" -> resp.end(Buffer.buffer(r.rootCrl()));
      default -> resp.setStatusCode(404).end();
    }
  }

  private void chain(io.vertx.core.http.HttpServerResponse resp, String header, String pem) {
    if (!dropChainHeader) resp.putHeader(header, URLEncoder.encode(pem, StandardCharsets.UTF_8));
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
  void recordedPcsResponses_passEveryCollateralCheck_andReachTheTcbMatch() throws Exception {
    responses = goTdxGuest();
    Instant now = Instant.parse("2023-07-01T01:00:00Z");
    Clock clock = Clock.fixed(now, ZoneOffset.UTC);
    VerifiedSignatures sigs = QuoteSignatureVerifier.create(DcapFixtures.intelRoot(), clock)
        .verify(QuoteParser.parse(DcapFixtures.quote("go-tdx-guest/tdx_prod_quote_SPR_E4.dat")));
    Collateral c = pccs().fetch(CollateralKey.of(sigs));
    assertThat(c.tcbInfoJson()).startsWith("{\"id\":\"TDX\"");
    VerifiedCollateral vc = CollateralVerifier.create(DcapFixtures.intelRoot().getPublicKey(), clock).verify(c, sigs);
    // The fixtures' expected outcome for this quote and collateral (go-spr-v4-tcb-notsupported).
    assertThatThrownBy(() -> TcbMatcher.match(vc)).isInstanceOf(VerificationException.class)
        .hasMessageStartingWith("tcb_not_supported");
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
    assertThat(CollateralCache.expires(first, NOW)).isEqualTo(EXPIRY);
    assertThat(cache.get(key)).isSameAs(first);
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(1);
    assertThat(TcbMatcher.match(CollateralVerifier.create(DcapFixtures.intelRoot().getPublicKey(), clock)
        .verify(first, sigs)).status()).isEqualTo(TcbStatus.UP_TO_DATE);
    clock.set(EXPIRY);
    TrustedCollateral second = cache.get(key);
    assertThat(second).isNotSameAs(first);
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(2);
    assertThat(hits.get("/sgx/certification/v4/pckcrl")).hasValue(2);
  }

  /** Audit I-5: Intel's collateral is current for about 30 days; the cache refetches daily all the same. */
  @Test
  void cache_refetchesAfter24Hours_evenWhenNextUpdateIsWeeksAway() throws Exception {
    Instant early = Instant.parse("2025-06-20T00:00:00Z");
    MutableClock clock = new MutableClock(early);
    CollateralCache cache = cache(clock);
    CollateralKey key = CollateralKey.of(signatures());
    TrustedCollateral first = cache.get(key);
    assertThat(CollateralCache.expires(first, early)).isEqualTo(early.plus(Duration.ofHours(24))).isBefore(EXPIRY);
    clock.set(early.plus(Duration.ofHours(24)).minusSeconds(1));
    assertThat(cache.get(key)).isSameAs(first);
    clock.set(early.plus(Duration.ofHours(24)));
    assertThat(cache.get(key)).isNotSameAs(first);
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(2);
    assertThat(hits.get("/sgx/certification/v4/pckcrl")).hasValue(2);
  }

  @Test
  void perQuoteSource_fetchesByTheQuotesFmspc_cachesUntilNextUpdate_andTheCollateralVerifiesTheQuote() throws Exception {
    MutableClock clock = new MutableClock(NOW);
    QuoteCollateralSource source = new QuoteCollateralSource(pccs(), DcapFixtures.intelRoot().getPublicKey(), clock);
    byte[] quote = DcapFixtures.quote(QUOTE);
    Collateral c = source.collateralFor(QuoteParser.parse(quote));
    assertThat(source.collateralFor(QuoteParser.parse(quote))).isSameAs(c);
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(1);
    var result = org.cocoonjvm.attest.AttestationVerifier.create(org.cocoonjvm.attest.TrustAnchors.intel(), clock)
        .verify(quote, c, org.cocoonjvm.attest.policy.Policy.MEASUREMENTS_UNCHECKED, java.util.Optional.empty());
    assertThat(result.status()).contains(TcbStatus.UP_TO_DATE);
    clock.set(EXPIRY);
    source.collateralFor(QuoteParser.parse(quote));
    assertThat(hits.get("/tdx/certification/v4/tcb")).hasValue(2);
    forcedStatus = 503;
    clock.set(EXPIRY.plusSeconds(3600));
    assertThatThrownBy(() -> source.collateralFor(QuoteParser.parse(quote))).isInstanceOf(java.io.IOException.class);
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
}
