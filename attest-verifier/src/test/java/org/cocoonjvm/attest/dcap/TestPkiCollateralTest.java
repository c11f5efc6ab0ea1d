package org.cocoonjvm.attest.dcap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import org.cocoonjvm.attest.quote.NeedsFixtures;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.api.Test;

/**
 * Collateral cases no real fixture has, against a {@link TestPki}: a revoked PCK leaf, PCK CA or
 * TCB signer; PCK CRLs with a wrong signer or past their nextUpdate; TCB Info / QE Identity edited
 * and re-signed (PCE-ID, FMSPC, QE MRSIGNER). The quote, its QE and
 * the TCB Info / QE Identity text are real; the PCK chain (with the real leaf's SGX extension) and
 * the collateral signatures are the test PKI's, so clean CRLs verify end to end.
 */
@NeedsFixtures
class TestPkiCollateralTest {
  static final Instant NOW = Instant.parse("2025-07-19T10:00:34Z");
  final VerifiedSignatures real = realSignatures();
  final TestPki pki = new TestPki(NOW, real.pckLeaf());
  final Instant nextUpdate = NOW.plus(Duration.ofDays(10));

  static VerifiedSignatures realSignatures() {
    try {
      return QuoteSignatureVerifier.create(DcapFixtures.intelRoot(), Clock.fixed(NOW, ZoneOffset.UTC))
          .verify(QuoteParser.parse(DcapFixtures.quote("dcap-qvl/tdx_quote")));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** The real quote and TCB Info / QE Identity text, re-signed and chained under the test PKI. */
  TcbVerdict verify(X509CRL rootCrl, X509CRL pckCrl) throws Exception {
    Collateral realCollateral = CollateralCasesTest.collateral("dcap-qvl/tdx_quote_collateral.json");
    return verify(rootCrl, pckCrl, realCollateral.tcbInfoJson(), realCollateral.qeIdentityJson());
  }

  /** Like {@link #verify(X509CRL, X509CRL)}, with edited TCB Info / QE Identity text signed by the test PKI. */
  TcbVerdict verify(X509CRL rootCrl, X509CRL pckCrl, String tcbInfoJson, String qeIdentityJson) throws Exception {
    List<X509Certificate> tcbChain = List.of(pki.tcbSigner, pki.root);
    Collateral c = new Collateral(
        tcbInfoJson, pki.signJson(tcbInfoJson), tcbChain, qeIdentityJson, pki.signJson(qeIdentityJson), tcbChain,
        rootCrl, Optional.of(pckCrl), List.of(pki.ca, pki.root));
    VerifiedSignatures sigs = new VerifiedSignatures(real.quote(), pki.leaf, pki.ca, pki.root);
    return TcbMatcher.match(
        CollateralVerifier.create(pki.root.getPublicKey(), Clock.fixed(NOW, ZoneOffset.UTC)).verify(c, sigs));
  }

  X509CRL rootCrl(X509Certificate... revoked) {
    return pki.crl(pki.root, pki.rootKey, nextUpdate, List.of(revoked));
  }

  X509CRL pckCrl(X509Certificate... revoked) {
    return pki.crl(pki.ca, pki.caKey, nextUpdate, List.of(revoked));
  }

  static void assertCode(ThrowingCall call, String code) {
    assertThat(catchThrowable(call::run)).isInstanceOf(VerificationException.class)
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
  void cleanCrls_verifyEndToEnd() throws Exception {
    assertThat(verify(rootCrl(), pckCrl()).status()).isEqualTo(TcbStatus.UP_TO_DATE);
  }

  @Test
  void revokedTcbSigner_isCertificateRevoked() {
    assertCode(() -> verify(rootCrl(pki.tcbSigner), pckCrl()), "certificate_revoked");
  }

  @Test
  void anotherCasCrl_isRejected() {
    TestPki other = new TestPki(NOW, real.pckLeaf());
    assertCode(() -> verify(rootCrl(), other.crl(other.ca, other.caKey, nextUpdate, List.of())), "collateral_chain_invalid");
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

  static String tcbInfo() throws Exception {
    return CollateralCasesTest.collateral("dcap-qvl/tdx_quote_collateral.json").tcbInfoJson();
  }

  static String qeIdentity() throws Exception {
    return CollateralCasesTest.collateral("dcap-qvl/tdx_quote_collateral.json").qeIdentityJson();
  }

  @Test
  void signedTcbInfoForAnotherPceId_isAPceIdMismatch() throws Exception {
    String edited = tcbInfo().replace("\"pceId\":\"0000\"", "\"pceId\":\"0001\"");
    assertCode(() -> verify(rootCrl(), pckCrl(), edited, qeIdentity()), "pceid_mismatch");
  }

  @Test
  void signedTcbInfoForAnotherFmspc_isAnFmspcMismatch() throws Exception {
    String edited = tcbInfo().replace("\"fmspc\":\"B0C06F000000\"", "\"fmspc\":\"B0C06F000001\"");
    assertCode(() -> verify(rootCrl(), pckCrl(), edited, qeIdentity()), "fmspc_mismatch");
  }

  @Test
  void editedQeIdentityText_breaksItsSignature() throws Exception {
    Collateral realCollateral = CollateralCasesTest.collateral("dcap-qvl/tdx_quote_collateral.json");
    Collateral c = new Collateral(realCollateral.tcbInfoJson(), realCollateral.tcbInfoSignature(),
        realCollateral.tcbInfoIssuerChain(), realCollateral.qeIdentityJson().replace("\"version\":2", "\"version\":3"),
        realCollateral.qeIdentitySignature(), realCollateral.qeIdentityIssuerChain(), realCollateral.rootCaCrl(),
        realCollateral.pckCrl(), realCollateral.pckCrlIssuerChain());
    assertCode(() -> CollateralVerifier.create(DcapFixtures.intelRoot().getPublicKey(), Clock.fixed(NOW, ZoneOffset.UTC))
        .verify(c, real), "qe_identity_signature_invalid");
  }

  @Test
  void signedQeIdentityForAnotherSigner_isAQeIdentityMismatch() throws Exception {
    String edited = qeIdentity().replaceFirst("\"mrsigner\":\"[0-9A-Fa-f]{2}", "\"mrsigner\":\"00");
    assertThat(edited).isNotEqualTo(qeIdentity());
    assertCode(() -> verify(rootCrl(), pckCrl(), tcbInfo(), edited), "qe_identity_mismatch");
  }
}
