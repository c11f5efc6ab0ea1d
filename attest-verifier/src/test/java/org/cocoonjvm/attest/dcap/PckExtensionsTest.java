package org.cocoonjvm.attest.dcap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PckExtensionsTest {

  @ParameterizedTest
  @CsvSource({
    // FMSPCs as listed in the fixtures README.
    "dcap-qvl/tdx_quote, 2025-07-19T10:00:34Z, b0c06f000000",
    "dcap-qvl/near_quote_hex.txt, 2025-10-02T07:03:50Z, 20a06f000000",
    "dcap-qvl/tdx_quote_outdated, 2026-03-20T10:41:14Z, 90c06f000000",
    "cocoon/quote.dat, 2026-03-01T00:00:00Z, 90c06f000000",
    "go-tdx-guest/tdx_prod_quote_SPR_E4.dat, 2023-07-01T01:00:00Z, 50806f000000",
    "trustee/tdx_quote_6.dat, 2025-11-01T00:00:00Z, 00a06d080000",
  })
  void of_verifiedPckLeaf_shouldReadFmspcAndPceId(String file, String now, String fmspc)
      throws Exception {
    var verifier =
        QuoteSignatureVerifier.create(
            DcapFixtures.intelRoot(), Clock.fixed(Instant.parse(now), ZoneOffset.UTC));

    PckExtensions ext = verifier.verify(QuoteParser.parse(DcapFixtures.quote(file))).pckExtensions();

    assertThat(ext.fmspc()).isEqualTo(fmspc);
    assertThat(ext.pceId()).hasSize(4).isEqualTo("0000");
  }

  @Test
  void of_certificateWithoutSgxExtension_shouldBeMalformed() {
    X509Certificate root = DcapFixtures.intelRoot(); // outside the lambda: a missing fixture skips the test
    assertThatThrownBy(() -> PckExtensions.of(root))
        .isInstanceOfSatisfying(
            VerificationException.class,
            e -> assertThat(e.code()).isEqualTo("pck_chain_malformed"));
  }
}
