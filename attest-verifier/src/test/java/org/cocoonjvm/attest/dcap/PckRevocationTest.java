package org.cocoonjvm.attest.dcap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.api.Test;

/**
 * The CRL stages of {@link CollateralVerifier} against a {@link TestPki}: a revoked PCK leaf, a
 * revoked PCK CA, and CRLs with a wrong signer or past their nextUpdate. The quote and the
 * TCB Info / QE Identity parts are real; the PCK chain is the test PKI's.
 */
class PckRevocationTest {
  static final Instant NOW = Instant.parse("2025-07-19T10:00:34Z");
  final TestPki pki = new TestPki(NOW);
  final Instant nextUpdate = NOW.plus(Duration.ofDays(10));

  VerifiedCollateral verify(X509CRL rootCrl, X509CRL pckCrl) throws Exception {
    Collateral real = CollateralCasesTest.collateral("dcap-qvl/tdx_quote_collateral.json");
    Collateral c = new Collateral(real.tcbInfoJson(), real.tcbInfoSignature(), real.tcbInfoIssuerChain(),
        real.qeIdentityJson(), real.qeIdentitySignature(), real.qeIdentityIssuerChain(), rootCrl,
        Optional.of(pckCrl), List.of(pki.ca, pki.root));
    VerifiedSignatures sigs = new VerifiedSignatures(
        QuoteParser.parse(DcapFixtures.quote("dcap-qvl/tdx_quote")), pki.leaf, pki.ca, pki.root);
    return CollateralVerifier.create(pki.root.getPublicKey(), Clock.fixed(NOW, ZoneOffset.UTC)).verify(c, sigs);
  }

  X509CRL rootCrl(X509Certificate... revoked) {
    return pki.crl(pki.root, pki.rootKey, nextUpdate, List.of(revoked));
  }

  X509CRL pckCrl(X509Certificate... revoked) {
    return pki.crl(pki.ca, pki.caKey, nextUpdate, List.of(revoked));
  }

  static void assertCode(ThrowingCall call, String code) {
    assertThatThrownBy(call::run).isInstanceOf(VerificationException.class)
        .satisfies(e -> assertThat(((VerificationException) e).code()).as(e.getMessage()).isEqualTo(code));
  }

  interface ThrowingCall {
    void run() throws Exception;
  }

  @Test
  void revokedPckLeaf_isPckRevoked() {
    assertCode(() -> verify(rootCrl(), pckCrl(pki.leaf)), "pck_revoked");
  }

  @Test
  void revokedPckCa_isCertificateRevoked() {
    assertCode(() -> verify(rootCrl(pki.ca), pckCrl()), "certificate_revoked");
  }

  @Test
  void cleanCrls_passTheRevocationStages_andStopAtTheTcbInfoChain() {
    // The real TCB Info chain ends at Intel's root, not the test root: the first check after the CRLs.
    assertCode(() -> verify(rootCrl(), pckCrl()), "collateral_chain_invalid");
  }

  @Test
  void pckCrlSignedByAnotherKey_isRejected() {
    X509CRL forged = pki.crl(pki.ca, TestPki.ecKey(), nextUpdate, List.of());
    assertCode(() -> verify(rootCrl(), forged), "collateral_chain_invalid");
  }

  @Test
  void pckCrlPastItsNextUpdate_isExpired() {
    X509CRL stale = pki.crl(pki.ca, pki.caKey, NOW.minusSeconds(1), List.of(pki.leaf));
    assertCode(() -> verify(rootCrl(), stale), "collateral_expired");
  }
}
