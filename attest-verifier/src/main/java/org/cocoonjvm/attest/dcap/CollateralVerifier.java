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
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;

/**
 * Verifies collateral against a quote whose signatures already verified (reference §2.3 steps
 * 2, 4, 5, 6), in two halves that each stop at the first failure. {@link #trust} checks what does
 * not depend on the quote or the time (signatures and chains of the root CRL, PCK CRL, TCB Info and
 * QE Identity) and may be cached; {@link #verify(TrustedCollateral, VerifiedSignatures)} checks
 * dates, revocation of the quote's PCK chain, ids, FMSPC and PCE-ID. Immutable; the clock is
 * injected and read once per call.
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

  /** {@link #trust} then {@link #verify(TrustedCollateral, VerifiedSignatures)}. */
  public VerifiedCollateral verify(Collateral c, VerifiedSignatures sigs) throws VerificationException {
    return verify(trust(c), sigs);
  }

  /**
   * The clock-free, quote-free half, done once per collateral set and cacheable until its
   * nextUpdate: root CA CRL signed by the pinned root; PCK CRL issuer chain (PCK CA → pinned root)
   * and the PCK CRL's signature by that CA; TCB Info and QE Identity signing chains (signer signed
   * by the pinned root, not on the root CRL) and their signatures over the raw JSON; both parsed.
   */
  public TrustedCollateral trust(Collateral c) throws VerificationException {
    checkCrlSignature(c.rootCaCrl(), pinnedRoot, "root CRL");
    X509Certificate pckCrlIssuer = null;
    if (c.pckCrl().isPresent()) {
      List<X509Certificate> chain = c.pckCrlIssuerChain();
      checkSigningChain(chain, c.rootCaCrl(), "PCK CRL");
      pckCrlIssuer = chain.get(0);
      X509CRL crl = c.pckCrl().get();
      if (!crl.getIssuerX500Principal().equals(pckCrlIssuer.getSubjectX500Principal())) {
        throw new VerificationException(COLLATERAL_CHAIN_INVALID, "PCK CRL issuer",
            pckCrlIssuer.getSubjectX500Principal().getName(), crl.getIssuerX500Principal().getName());
      }
      checkCrlSignature(crl, pckCrlIssuer.getPublicKey(), "PCK CRL");
    }
    checkSigningChain(c.tcbInfoIssuerChain(), c.rootCaCrl(), "TCB Info");
    checkSignature(c.tcbInfoIssuerChain().get(0), c.tcbInfoJson(), c.tcbInfoSignature(), TCB_INFO_SIGNATURE_INVALID);
    TcbInfo tcb = parse(() -> TcbInfo.parse(c.tcbInfoJson()), "TCB Info");
    checkSigningChain(c.qeIdentityIssuerChain(), c.rootCaCrl(), "QE Identity");
    checkSignature(c.qeIdentityIssuerChain().get(0), c.qeIdentityJson(), c.qeIdentitySignature(), QE_IDENTITY_SIGNATURE_INVALID);
    QeIdentity qe = parse(() -> QeIdentity.parse(c.qeIdentityJson()), "QE Identity");
    return new TrustedCollateral(c, tcb, qe, pckCrlIssuer);
  }

  /**
   * The per-quote half, at {@code clock.instant()}: every CRL, signing certificate, TCB Info and
   * QE Identity current; the quote's PCK CA is the PCK CRL's issuer (same name and key) and not on
   * the root CRL; the PCK leaf not on the PCK CRL; ids and versions fit the quote's TEE; FMSPC and
   * PCE-ID equal the PCK certificate's.
   */
  public VerifiedCollateral verify(TrustedCollateral t, VerifiedSignatures sigs) throws VerificationException {
    Instant now = clock.instant();
    Collateral c = t.collateral();
    checkCrlWindow(c.rootCaCrl(), "root CRL", now);
    checkPckCrl(t, sigs, now);
    if (c.rootCaCrl().isRevoked(sigs.pckIssuer())) throw revoked("PCK CA", sigs.pckIssuer());

    checkChainWindows(c.tcbInfoIssuerChain(), "TCB Info", now);
    TcbInfo tcb = t.tcbInfo();
    checkDates("TCB Info", tcb.issueDate(), tcb.nextUpdate(), now);
    String tee = sigs.quote().isTdx() ? "TDX" : "SGX";
    if (!tcb.id().equals(tee) || tcb.version() < 3) {
      throw new VerificationException(COLLATERAL_MALFORMED, "TCB Info id/version", tee + " v>=3", tcb.id() + " v" + tcb.version());
    }
    PckExtensions pck = sigs.pckExtensions();
    checkEqual(FMSPC_MISMATCH, "FMSPC", pck.fmspc(), tcb.fmspc());
    checkEqual(PCEID_MISMATCH, "PCE-ID", pck.pceId(), tcb.pceId());

    checkChainWindows(c.qeIdentityIssuerChain(), "QE Identity", now);
    QeIdentity qe = t.qeIdentity();
    checkDates("QEIdentity", qe.issueDate(), qe.nextUpdate(), now);
    String qeId = sigs.quote().isTdx() ? "TD_QE" : "QE";
    if (!qe.id().equals(qeId) || qe.version() != 2) {
      throw new VerificationException(COLLATERAL_MALFORMED, "QE Identity id/version", qeId + " v2", qe.id() + " v" + qe.version());
    }
    return new VerifiedCollateral(sigs, tcb, qe);
  }

  private void checkPckCrl(TrustedCollateral t, VerifiedSignatures sigs, Instant now) throws VerificationException {
    Collateral c = t.collateral();
    if (c.pckCrl().isEmpty()) {
      if (requirePckCrl) throw new VerificationException(PCK_CRL_MISSING, "collateral has no PCK CRL", "PCK CRL", "null");
      return;
    }
    X509CRL crl = c.pckCrl().get();
    X509Certificate ca = sigs.pckIssuer();
    X509Certificate crlIssuer = t.pckCrlIssuer();
    if (!ca.getSubjectX500Principal().equals(crlIssuer.getSubjectX500Principal())
        || !MessageDigest.isEqual(ca.getPublicKey().getEncoded(), crlIssuer.getPublicKey().getEncoded())) {
      throw new VerificationException(COLLATERAL_CHAIN_INVALID, "PCK CRL is for another PCK CA",
          ca.getSubjectX500Principal().getName(), crlIssuer.getSubjectX500Principal().getName());
    }
    checkChainWindows(c.pckCrlIssuerChain(), "PCK CRL", now);
    checkCrlWindow(crl, "PCK CRL", now);
    if (crl.isRevoked(sigs.pckLeaf())) {
      throw new VerificationException(PCK_REVOKED, "PCK leaf is on the PCK CRL", "not revoked",
          "serial " + sigs.pckLeaf().getSerialNumber().toString(16));
    }
  }

  private static void checkCrlSignature(X509CRL crl, PublicKey issuerKey, String what) throws VerificationException {
    try {
      crl.verify(issuerKey);
    } catch (GeneralSecurityException e) {
      throw new VerificationException(COLLATERAL_CHAIN_INVALID, what + " signature", "signed by issuer", e.toString(), e);
    }
    if (crl.getNextUpdate() == null) {
      throw new VerificationException(COLLATERAL_MALFORMED, what + " has no nextUpdate", "nextUpdate", "absent");
    }
  }

  private static void checkCrlWindow(X509CRL crl, String what, Instant now) throws VerificationException {
    checkWindow(what, crl.getThisUpdate().toInstant(), crl.getNextUpdate().toInstant(), now);
  }

  /** Signing cert → root; root equal by key to the pinned root; signer signed by it and not revoked. */
  private void checkSigningChain(List<X509Certificate> chain, X509CRL rootCrl, String what)
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
    if (rootCrl.isRevoked(signer)) throw revoked(what + " signing certificate", signer);
  }

  private static void checkChainWindows(List<X509Certificate> chain, String what, Instant now)
      throws VerificationException {
    for (X509Certificate cert : chain) {
      checkWindow(what + " certificate " + cert.getSubjectX500Principal().getName(),
          cert.getNotBefore().toInstant(), cert.getNotAfter().toInstant(), now);
    }
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
