package org.cocoonjvm.attest.dcap;

import static org.cocoonjvm.attest.dcap.VerificationException.Reason.CERTIFICATE_REVOKED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.COLLATERAL_CHAIN_INVALID;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.COLLATERAL_EXPIRED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.COLLATERAL_MALFORMED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.FMSPC_MISMATCH;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.PCEID_MISMATCH;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.PCK_CRL_MISSING;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.PCK_REVOKED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.QE_IDENTITY_SIGNATURE_INVALID;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.TCB_INFO_SIGNATURE_INVALID;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;

/**
 * Verifies collateral against a quote whose signatures already verified (reference §2.3 steps
 * 2, 4, 5, 6), in this order, stopping at the first failure: root CA CRL, PCK CRL, TCB Info
 * (chain, signature over the raw JSON, dates, id, FMSPC, PCE-ID), QE Identity (chain, signature,
 * dates, id). Immutable; the clock is injected and read once per call.
 */
public final class CollateralVerifier {
  private static final HexFormat HEX = HexFormat.of();

  private final PublicKey pinnedRoot;
  private final Clock clock;
  private final boolean requirePckCrl;

  private CollateralVerifier(PublicKey pinnedRoot, Clock clock, boolean requirePckCrl) {
    this.pinnedRoot = Objects.requireNonNull(pinnedRoot, "pinnedRoot");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.requirePckCrl = requirePckCrl;
  }

  /** A strict verifier: collateral without a PCK CRL fails with {@code pck_crl_missing}. */
  public static CollateralVerifier create(PublicKey pinnedRoot, Clock clock) {
    return new CollateralVerifier(pinnedRoot, clock, true);
  }

  /** The same verifier, but a missing PCK CRL is accepted (a present one is still checked). */
  public CollateralVerifier allowingMissingPckCrl() {
    return new CollateralVerifier(pinnedRoot, clock, false);
  }

  public VerifiedCollateral verify(Collateral c, VerifiedSignatures sigs) throws VerificationException {
    Instant now = clock.instant();
    checkCrl(c.rootCaCrl(), pinnedRoot, "root CRL", now);
    checkPckCrl(c, sigs, now);
    if (c.rootCaCrl().isRevoked(sigs.pckIssuer())) throw revoked("PCK CA", sigs.pckIssuer());

    checkSigningChain(c.tcbInfoIssuerChain(), c.rootCaCrl(), "TCB Info", now);
    checkSignature(c.tcbInfoIssuerChain().get(0), c.tcbInfoJson(), c.tcbInfoSignature(), TCB_INFO_SIGNATURE_INVALID);
    TcbInfo tcb = parse(() -> TcbInfo.parse(c.tcbInfoJson()), "TCB Info");
    checkDates("TCB Info", tcb.issueDate(), tcb.nextUpdate(), now);
    String tee = sigs.quote().isTdx() ? "TDX" : "SGX";
    if (!tcb.id().equals(tee) || tcb.version() < 3) {
      throw new VerificationException(COLLATERAL_MALFORMED, "TCB Info id/version", tee + " v>=3", tcb.id() + " v" + tcb.version());
    }
    PckExtensions pck = sigs.pckExtensions();
    checkEqual(FMSPC_MISMATCH, "FMSPC", pck.fmspc(), tcb.fmspc());
    checkEqual(PCEID_MISMATCH, "PCE-ID", pck.pceId(), tcb.pceId());

    checkSigningChain(c.qeIdentityIssuerChain(), c.rootCaCrl(), "QE Identity", now);
    checkSignature(c.qeIdentityIssuerChain().get(0), c.qeIdentityJson(), c.qeIdentitySignature(), QE_IDENTITY_SIGNATURE_INVALID);
    QeIdentity qe = parse(() -> QeIdentity.parse(c.qeIdentityJson()), "QE Identity");
    checkDates("QEIdentity", qe.issueDate(), qe.nextUpdate(), now);
    String qeId = sigs.quote().isTdx() ? "TD_QE" : "QE";
    if (!qe.id().equals(qeId) || qe.version() != 2) {
      throw new VerificationException(COLLATERAL_MALFORMED, "QE Identity id/version", qeId + " v2", qe.id() + " v" + qe.version());
    }
    return new VerifiedCollateral(sigs, tcb, qe);
  }

  private void checkPckCrl(Collateral c, VerifiedSignatures sigs, Instant now) throws VerificationException {
    if (c.pckCrl().isEmpty()) {
      if (requirePckCrl) throw new VerificationException(PCK_CRL_MISSING, "collateral has no PCK CRL", "PCK CRL", "null");
      return;
    }
    X509CRL crl = c.pckCrl().get();
    X509Certificate ca = sigs.pckIssuer();
    if (!crl.getIssuerX500Principal().equals(ca.getSubjectX500Principal())) {
      throw new VerificationException(COLLATERAL_CHAIN_INVALID, "PCK CRL issuer",
          ca.getSubjectX500Principal().getName(), crl.getIssuerX500Principal().getName());
    }
    checkCrl(crl, ca.getPublicKey(), "PCK CRL", now);
    if (crl.isRevoked(sigs.pckLeaf())) {
      throw new VerificationException(PCK_REVOKED, "PCK leaf is on the PCK CRL", "not revoked",
          "serial " + sigs.pckLeaf().getSerialNumber().toString(16));
    }
  }

  private static void checkCrl(X509CRL crl, PublicKey issuerKey, String what, Instant now)
      throws VerificationException {
    try {
      crl.verify(issuerKey);
    } catch (GeneralSecurityException e) {
      throw new VerificationException(COLLATERAL_CHAIN_INVALID, what + " signature", "signed by issuer", e.toString(), e);
    }
    Date next = crl.getNextUpdate();
    if (next == null) throw new VerificationException(COLLATERAL_MALFORMED, what + " has no nextUpdate", "nextUpdate", "absent");
    checkWindow(what, crl.getThisUpdate().toInstant(), next.toInstant(), now);
  }

  /** Signing cert → root; root equal by key to the pinned root; both current; signer not revoked. */
  private void checkSigningChain(List<X509Certificate> chain, X509CRL rootCrl, String what, Instant now)
      throws VerificationException {
    X509Certificate signer = chain.get(0);
    X509Certificate root = chain.get(chain.size() - 1);
    if (chain.size() != 2 || !MessageDigest.isEqual(root.getPublicKey().getEncoded(), pinnedRoot.getEncoded())) {
      throw new VerificationException(COLLATERAL_CHAIN_INVALID, what + " issuer chain",
          "signer, pinned root", chain.size() + " certificates ending in " + root.getSubjectX500Principal().getName());
    }
    try {
      signer.verify(pinnedRoot);
    } catch (GeneralSecurityException e) {
      throw new VerificationException(COLLATERAL_CHAIN_INVALID, what + " signing certificate", "signed by root", e.toString(), e);
    }
    for (X509Certificate cert : chain) {
      checkWindow(what + " certificate " + cert.getSubjectX500Principal().getName(),
          cert.getNotBefore().toInstant(), cert.getNotAfter().toInstant(), now);
    }
    if (rootCrl.isRevoked(signer)) throw revoked(what + " signing certificate", signer);
  }

  private static void checkSignature(X509Certificate signer, String text, byte[] sig, VerificationException.Reason reason)
      throws VerificationException {
    boolean ok;
    try {
      Signature s = Signature.getInstance("SHA256withECDSAinP1363Format");
      s.initVerify(signer.getPublicKey());
      s.update(text.getBytes(StandardCharsets.UTF_8));
      ok = sig.length == EcP256.RAW_SIGNATURE_SIZE && s.verify(sig);
    } catch (GeneralSecurityException e) {
      ok = false;
    }
    if (!ok) throw new VerificationException(reason, "signature over raw JSON", "valid r||s", HEX.formatHex(sig));
  }

  private static void checkDates(String what, Instant issue, Instant next, Instant now) throws VerificationException {
    if (now.isBefore(issue)) {
      throw new VerificationException(COLLATERAL_EXPIRED, what + ": issueDate in future", "issueDate <= " + now, issue.toString());
    }
    if (now.isAfter(next)) {
      throw new VerificationException(COLLATERAL_EXPIRED, what + ": nextUpdate passed", "nextUpdate >= " + now, next.toString());
    }
  }

  private static void checkWindow(String what, Instant from, Instant to, Instant now) throws VerificationException {
    if (now.isBefore(from) || now.isAfter(to)) {
      throw new VerificationException(COLLATERAL_EXPIRED, what + " not current", from + ".." + to, now.toString());
    }
  }

  private static void checkEqual(VerificationException.Reason r, String what, String pckHex, byte[] tcbValue)
      throws VerificationException {
    if (!MessageDigest.isEqual(HEX.parseHex(pckHex), tcbValue)) {
      throw new VerificationException(r, what + " of TCB Info vs PCK certificate", pckHex, HEX.formatHex(tcbValue));
    }
  }

  private static VerificationException revoked(String what, X509Certificate cert) {
    return new VerificationException(CERTIFICATE_REVOKED, what + " is on its CRL", "not revoked",
        "serial " + cert.getSerialNumber().toString(16));
  }

  private interface Parse<T> {
    T run();
  }

  private static <T> T parse(Parse<T> p, String what) throws VerificationException {
    try {
      return p.run();
    } catch (RuntimeException e) {
      throw new VerificationException(COLLATERAL_MALFORMED, what + " JSON", "TCB Info v3 / QE Identity v2", e.getMessage(), e);
    }
  }

  @Override
  public String toString() {
    return "CollateralVerifier[requirePckCrl=" + requirePckCrl + "]";
  }
}
