package org.cocoonjvm.attest.dcap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.cocoonjvm.attest.quote.Quote;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class QuoteSignatureVerifierTest {
  private static final String TDX = "dcap-qvl/tdx_quote";
  /** The fixed `now` of case dcapqvl-tdx-v4-uptodate; the PCK leaf is valid 2025-02-06..2032. */
  private static final Instant TDX_NOW = Instant.parse("2025-07-19T10:00:34Z");

  private static Clock at(Instant t) {
    return Clock.fixed(t, ZoneOffset.UTC);
  }

  private static QuoteSignatureVerifier verifier(Instant now) {
    return QuoteSignatureVerifier.create(DcapFixtures.intelRoot(), at(now));
  }

  private static VerificationException failure(byte[] quoteBytes, Instant now) throws Exception {
    Quote q = QuoteParser.parse(quoteBytes);
    try {
      verifier(now).verify(q);
    } catch (VerificationException e) {
      return e;
    }
    throw new AssertionError("verification unexpectedly succeeded");
  }

  private static byte[] flip(String file, int offset) {
    byte[] b = DcapFixtures.quote(file);
    b[offset] ^= 0x01;
    return b;
  }

  @ParameterizedTest
  @CsvSource({
    "dcap-qvl/tdx_quote, 2025-07-19T10:00:34Z",
    "dcap-qvl/near_quote_hex.txt, 2025-10-02T07:03:50Z",
    "dcap-qvl/sgx_quote, 2025-07-19T10:01:17Z",
    "dcap-qvl/tdx_quote_outdated, 2026-03-20T10:41:14Z",
    "go-tdx-guest/quote_v5_sample.dat, 2026-03-01T00:00:00Z",
    "cocoon/quote.dat, 2026-03-01T00:00:00Z",
    "go-tdx-guest/tdx_prod_quote_SPR_E4.dat, 2023-07-01T01:00:00Z",
    "trustee/tdx_quote_4.dat, 2023-07-01T01:00:00Z",
    "trustee/tdx_quote_6.dat, 2025-11-01T00:00:00Z",
    "dcap-qvl/tdx-quote.hex, 2025-07-19T10:00:34Z",
    "dcap-qvl/quote-from-tappd.hex, 2025-07-19T10:00:34Z",
  })
  void verify_realQuoteAtItsFixedNow_shouldPassAllFourChecks(String file, String now)
      throws Exception {
    Quote q = QuoteParser.parse(DcapFixtures.quote(file));

    VerifiedSignatures v = verifier(Instant.parse(now)).verify(q);

    assertThat(v.quote()).isSameAs(q);
    assertThat(v.pckLeaf().getSubjectX500Principal().getName()).contains("Intel SGX PCK Certificate");
    assertThat(v.pckIssuer().getSubjectX500Principal().getName()).containsPattern("PCK (Platform|Processor) CA");
    assertThat(v.root().getPublicKey()).isEqualTo(DcapFixtures.intelRoot().getPublicKey());
  }

  @Test
  void verify_pinnedByPemRootOfGoTdxGuest_shouldPassToo() throws Exception {
    var root = DcapFixtures.cert("go-tdx-guest/trusted_root.pem");
    Quote q = QuoteParser.parse(DcapFixtures.quote(TDX));

    assertThat(QuoteSignatureVerifier.create(root.getPublicKey(), at(TDX_NOW)).verify(q)).isNotNull();
  }

  @ParameterizedTest
  @CsvSource({
    // Offsets from the fixtures README's tamper vectors for dcap-qvl/tdx_quote.
    "0x1E, quote_signature_invalid",       // header
    "184, quote_signature_invalid",        // body mr_td
    "568, quote_signature_invalid",        // body report_data
    "636, quote_signature_invalid",        // quote signature
    "700, qe_report_binding_mismatch",     // attestation key
    "1220, qe_report_binding_mismatch",    // qe auth data: the qe report itself is intact
    "870, qe_report_signature_invalid",    // qe report
    "1154, qe_report_signature_invalid",   // qe report signature
  })
  void verify_flippedBit_shouldFailWithStableCode(String offset, String code) throws Exception {
    VerificationException e = failure(flip(TDX, Integer.decode(offset)), TDX_NOW);

    assertThat(e.code()).isEqualTo(code);
    assertThat(e.expected()).isNotBlank();
    assertThat(e.actual()).isNotBlank();
  }

  @Test
  void verify_flippedBitInPckLeaf_shouldFailTheChain() throws Exception {
    VerificationException e = failure(flip(TDX, 1558), TDX_NOW);

    assertThat(e.code()).isIn("pck_chain_malformed", "chain_signature_invalid");
  }

  @Test
  void verify_flippedBitInSgxQuoteBody_shouldFailQuoteSignature() throws Exception {
    VerificationException e = failure(flip("dcap-qvl/sgx_quote", 48 + 64), Instant.parse("2025-07-19T10:01:17Z"));

    assertThat(e.code()).isEqualTo("quote_signature_invalid");
  }

  @Test
  void verify_beforeLeafNotBefore_shouldBeNotYetValid() throws Exception {
    // PCK leaf notBefore 2025-02-06T23:25:51Z.
    VerificationException e =
        failure(DcapFixtures.quote(TDX), Instant.parse("2025-02-06T23:25:50Z"));

    assertThat(e.code()).isEqualTo("chain_not_yet_valid");
    assertThat(e.expected()).contains("2025-02-06T23:25:51Z");
  }

  @Test
  void verify_afterLeafNotAfter_shouldBeExpired() throws Exception {
    // PCK leaf notAfter 2032-02-06T23:25:51Z.
    VerificationException e =
        failure(DcapFixtures.quote(TDX), Instant.parse("2032-02-06T23:25:52Z"));

    assertThat(e.code()).isEqualTo("chain_expired");
    assertThat(e.actual()).isEqualTo("2032-02-06T23:25:52Z");
  }

  @Test
  void verify_atBoundaries_shouldPass() throws Exception {
    Quote q = QuoteParser.parse(DcapFixtures.quote(TDX));

    verifier(Instant.parse("2025-02-06T23:25:51Z")).verify(q);
    verifier(Instant.parse("2032-02-06T23:25:51Z")).verify(q);
  }

  @Test
  void verify_otherPinnedKey_shouldBeRootNotPinned() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"));
    Quote q = QuoteParser.parse(DcapFixtures.quote(TDX));
    var v = QuoteSignatureVerifier.create(g.generateKeyPair().getPublic(), at(TDX_NOW));

    assertThatThrownBy(() -> v.verify(q))
        .isInstanceOfSatisfying(
            VerificationException.class, e -> assertThat(e.code()).isEqualTo("root_not_pinned"));
  }

  @Test
  void verify_intelSyntheticSampleQuote_shouldFailAgainstTheRealRoot() throws Exception {
    // Synthetic test-PKI quote: its type-5 certification data holds DER rather than PEM
    // certificates (and its root is not Intel's), so it must never verify against Intel's root.
    VerificationException e =
        failure(DcapFixtures.quote("intel-qvl-sampledata/tdx/quote.dat"), TDX_NOW);

    assertThat(e.code()).isIn("pck_chain_malformed", "root_not_pinned");
  }

  // --- chain surgery: reorder or blank PEM blocks in place, keeping every length unchanged ---

  private static final Pattern PEM =
      Pattern.compile("-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\\n?", Pattern.DOTALL);

  /** Rewrites the quote's PEM chain region with {@code order} (indexes into the original blocks). */
  private static byte[] rechain(int... order) {
    byte[] b = DcapFixtures.quote(TDX);
    String text = new String(b, StandardCharsets.ISO_8859_1);
    Matcher m = PEM.matcher(text);
    List<String> blocks = new ArrayList<>();
    int start = -1;
    int end = -1;
    while (m.find()) {
      if (start < 0) start = m.start();
      end = m.end();
      blocks.add(m.group());
    }
    assertThat(blocks).hasSize(3);
    StringBuilder sb = new StringBuilder();
    for (int i : order) sb.append(blocks.get(i));
    while (sb.length() < end - start) sb.append('\0');
    byte[] replacement = sb.toString().getBytes(StandardCharsets.ISO_8859_1);
    System.arraycopy(replacement, 0, b, start, end - start);
    return b;
  }

  @Test
  void verify_rechainIdentity_shouldPass() throws Exception {
    verifier(TDX_NOW).verify(QuoteParser.parse(rechain(0, 1, 2)));
  }

  @Test
  void verify_rootMissing_shouldBeMalformed() throws Exception {
    assertThat(failure(rechain(0, 1), TDX_NOW).code()).isEqualTo("pck_chain_malformed");
  }

  @Test
  void verify_onlyLeaf_shouldBeMalformed() throws Exception {
    assertThat(failure(rechain(0), TDX_NOW).code()).isEqualTo("pck_chain_malformed");
  }

  @Test
  void verify_leafAndIntermediateSwapped_shouldBeMalformed() throws Exception {
    assertThat(failure(rechain(1, 0, 2), TDX_NOW).code()).isEqualTo("pck_chain_malformed");
  }

  @Test
  void verify_intermediateAndRootSwapped_shouldNotPin() throws Exception {
    assertThat(failure(rechain(0, 2, 1), TDX_NOW).code()).isEqualTo("root_not_pinned");
  }

  @Test
  void verify_rootInPlaceOfIntermediate_shouldBeSignatureInvalid() throws Exception {
    assertThat(failure(rechain(0, 2, 2), TDX_NOW).code()).isEqualTo("chain_signature_invalid");
  }

  @Test
  void verify_afterAGoodChain_aTamperedIntermediateStillFails() throws Exception {
    // One verifier: the good PCK CA / root pair it remembers must not vouch for an altered CA.
    QuoteSignatureVerifier v = verifier(TDX_NOW);
    v.verify(QuoteParser.parse(DcapFixtures.quote(TDX)));
    byte[] b = DcapFixtures.quote(TDX);
    String text = new String(b, StandardCharsets.ISO_8859_1);
    Matcher m = PEM.matcher(text);
    assertThat(m.find() && m.find()).isTrue();
    int at = text.indexOf("-----END", m.start()) - 10;
    assertThat(Character.isLetterOrDigit(text.charAt(at))).isTrue();
    b[at] = (byte) (text.charAt(at) == 'A' ? 'B' : 'A');
    assertThatThrownBy(() -> v.verify(QuoteParser.parse(b))).isInstanceOf(VerificationException.class)
        .satisfies(e -> assertThat(((VerificationException) e).code()).isIn("chain_signature_invalid", "pck_chain_malformed"));
    v.verify(QuoteParser.parse(DcapFixtures.quote(TDX)));
  }
}
