package org.cocoonjvm.attest.dcap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.cocoonjvm.attest.quote.NeedsFixtures;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/** Every tdx_sgx case of expected_results.json, through signatures, collateral and TCB matching. */
@NeedsFixtures
class CollateralCasesTest {

  static Stream<Map<String, Object>> cases() throws Exception {
    String text = Files.readString(DcapFixtures.dir().resolve("expected_results.json"));
    return Json.list(Json.obj(Json.parse(text), "root"), "tdx_sgx").stream().map(o -> Json.obj(o, "case"));
  }

  static TcbVerdict run(String quote, String collateral, Instant now, boolean strict) throws Exception {
    Clock clock = Clock.fixed(now, ZoneOffset.UTC);
    var root = DcapFixtures.intelRoot();
    VerifiedSignatures sigs = QuoteSignatureVerifier.create(root, clock).verify(QuoteParser.parse(DcapFixtures.quote(quote)));
    CollateralVerifier cv = CollateralVerifier.create(root.getPublicKey(), clock);
    if (!strict) cv = cv.allowingMissingPckCrl();
    return TcbMatcher.match(cv.verify(collateral(collateral), sigs));
  }

  static Collateral collateral(String relative) throws Exception {
    return Collateral.parse(Files.readString(DcapFixtures.dir().resolve(relative)));
  }

  @ParameterizedTest(name = "{index} {0}")
  @MethodSource("cases")
  void expectedResult(Map<String, Object> c) throws Exception {
    String name = Json.str(c, "name");
    Instant now = Instant.parse(Json.str(c, "now"));
    Map<String, Object> expected = Json.obj(c, "expected");
    boolean strict = !name.contains("no-pckcrl");
    if (expected.containsKey("error")) {
      String error = Json.str(expected, "error");
      List<String> codes = error.contains("TCB_NOT_SUPPORTED") ? List.of("tcb_not_supported")
          : error.contains("FMSPC") ? List.of("fmspc_mismatch")
          : error.startsWith("root CRL") ? List.of("collateral_expired", "chain_expired")
          : List.of("collateral_expired");
      assertThatThrownBy(() -> run(Json.str(c, "quote"), Json.str(c, "collateral"), now, strict))
          .as(name).isInstanceOf(VerificationException.class)
          .satisfies(e -> assertThat(codes).contains(((VerificationException) e).code()));
      return;
    }
    TcbVerdict v = run(Json.str(c, "quote"), Json.str(c, "collateral"), now, strict);
    assertThat(v.status().jsonName()).as(name).isEqualTo(Json.str(expected, "status"));
    assertThat(v.advisories()).as(name).containsExactlyInAnyOrderElementsOf(
        Json.list(expected, "advisories").stream().map(String.class::cast).toList());
  }

  @Test
  void missingPckCrl_strict_shouldThrow() {
    assertThatThrownBy(() -> run("trustee/tdx_quote_6.dat",
        "composed/trustee_2025-11_fmspc00a06d080000_collateral_NO_PCK_CRL.json", Instant.parse("2025-11-01T00:00:00Z"), true))
        .isInstanceOf(VerificationException.class).hasMessageStartingWith("pck_crl_missing");
  }

  @Test
  void flippedTcbInfoText_shouldThrowSignatureInvalid() throws Exception {
    Instant now = Instant.parse("2025-07-19T10:00:34Z");
    Clock clock = Clock.fixed(now, ZoneOffset.UTC);
    var root = DcapFixtures.intelRoot();
    VerifiedSignatures sigs = QuoteSignatureVerifier.create(root, clock)
        .verify(QuoteParser.parse(DcapFixtures.quote("dcap-qvl/tdx_quote")));
    Collateral c = collateral("dcap-qvl/tdx_quote_collateral.json");
    char[] t = c.tcbInfoJson().toCharArray();
    t[40] ^= 0x01;
    assertThatThrownBy(() -> CollateralVerifier.create(root.getPublicKey(), clock).verify(c.withTcbInfoJson(new String(t)), sigs))
        .isInstanceOf(VerificationException.class).hasMessageStartingWith("tcb_info_signature_invalid");
  }
}
