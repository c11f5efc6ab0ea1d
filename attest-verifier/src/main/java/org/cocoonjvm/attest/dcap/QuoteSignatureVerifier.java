package org.cocoonjvm.attest.dcap;

import static org.cocoonjvm.attest.dcap.VerificationException.Reason.CHAIN_EXPIRED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.CHAIN_NOT_YET_VALID;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.CHAIN_SIGNATURE_INVALID;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.PCK_CHAIN_MALFORMED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.QE_REPORT_BINDING_MISMATCH;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.QE_REPORT_SIGNATURE_INVALID;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.QUOTE_SIGNATURE_INVALID;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.ROOT_NOT_PINNED;

import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.cocoonjvm.attest.quote.Blob;
import org.cocoonjvm.attest.quote.CertificationData;
import org.cocoonjvm.attest.quote.Quote;
import org.cocoonjvm.attest.quote.SignatureData;

/**
 * Verifies the signatures that bind a DCAP quote to Intel's root, in Intel QVL order, stopping at
 * the first failure:
 *
 * <ol>
 *   <li>PCK chain: exactly leaf → Platform/Processor CA → root; root key equals the pinned key;
 *       every signature verifies with its issuer's key; every certificate is valid at
 *       {@code clock.instant()}.
 *   <li>QE report signature: ECDSA P-256 by the PCK leaf over the 384-byte QE report.
 *   <li>QE binding: QE REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes.
 *   <li>Quote signature: ECDSA P-256 by the attestation key over header ‖ body.
 * </ol>
 *
 * <p>Thread-safe; its only state is a bounded set of PCK CA / root pairs already verified. The
 * clock is injected and read once per {@link #verify(Quote)}.
 * Not covered here: CRLs, TCB Info and QE Identity collateral, TCB matching, policy.
 */
public final class QuoteSignatureVerifier {
  private static final HexFormat HEX = HexFormat.of();

  /** Platform and Processor CAs, a few issues each: the cache never needs to grow past this. */
  private static final int MAX_VERIFIED_CAS = 64;

  private final byte[] pinnedRootKey;
  private final Clock clock;
  /**
   * DER of (PCK CA ‖ root) pairs whose two signatures already verified. Every quote of a platform
   * family carries the same pair, so this saves two of the five ECDSA verifications per quote.
   * Signatures over identical DER with the pinned key cannot verify differently; validity dates
   * are still checked on every call.
   */
  private final Set<ByteBuffer> verifiedCas = ConcurrentHashMap.newKeySet();

  private QuoteSignatureVerifier(PublicKey pinnedRoot, Clock clock) {
    this.pinnedRootKey = pinnedRoot.getEncoded().clone();
    this.clock = clock;
  }

  /**
   * @param pinnedRoot the Intel SGX Root CA public key; the chain's root must carry this key
   * @param clock the time certificate validity is checked against
   */
  public static QuoteSignatureVerifier create(PublicKey pinnedRoot, Clock clock) {
    Objects.requireNonNull(pinnedRoot, "pinnedRoot");
    Objects.requireNonNull(clock, "clock");
    if (pinnedRoot.getEncoded() == null) {
      throw new IllegalArgumentException("pinned root key has no encoding");
    }
    return new QuoteSignatureVerifier(pinnedRoot, clock);
  }

  /** Pins the key of {@code root}; the certificate itself is not otherwise trusted. */
  public static QuoteSignatureVerifier create(X509Certificate root, Clock clock) {
    return create(root.getPublicKey(), clock);
  }

  public VerifiedSignatures verify(Quote quote) throws VerificationException {
    SignatureData sig = quote.signature();
    List<X509Certificate> chain = parseChain(sig.certification());
    X509Certificate leaf = chain.get(0);
    X509Certificate issuer = chain.get(1);
    X509Certificate root = chain.get(2);
    checkRootPinned(root);
    checkSignedBy(leaf, issuer, "pck leaf");
    ByteBuffer caPair = caPair(issuer, root);
    if (!verifiedCas.contains(caPair)) {
      checkSignedBy(issuer, root, "pck issuer");
      checkSignedBy(root, root, "root");
      if (verifiedCas.size() < MAX_VERIFIED_CAS) verifiedCas.add(caPair);
    }
    Instant now = clock.instant();
    for (X509Certificate c : chain) checkValidAt(c, now);

    checkEcdsa(
        leaf.getPublicKey(), sig.qeReport().raw(), sig.qeReportSignature(),
        QE_REPORT_SIGNATURE_INVALID, "qe report signature by pck leaf");
    checkQeBinding(sig);
    checkEcdsa(
        attestationKey(sig.attestationKey()), quote.signedBytes(), sig.quoteSignature(),
        QUOTE_SIGNATURE_INVALID, "quote signature by attestation key");
    return new VerifiedSignatures(quote, leaf, issuer, root);
  }

  private static ByteBuffer caPair(X509Certificate ca, X509Certificate root) throws VerificationException {
    try {
      byte[] a = ca.getEncoded();
      byte[] b = root.getEncoded();
      return ByteBuffer.allocate(a.length + b.length).put(a).put(b).flip();
    } catch (java.security.cert.CertificateEncodingException e) {
      throw new VerificationException(PCK_CHAIN_MALFORMED, "pck chain does not re-encode", "DER", e.getMessage(), e);
    }
  }

  private static List<X509Certificate> parseChain(CertificationData cert)
      throws VerificationException {
    if (cert.type() != CertificationData.TYPE_PCK_CERT_CHAIN) {
      throw new VerificationException(
          PCK_CHAIN_MALFORMED, "certification data is not a PEM chain",
          "type " + CertificationData.TYPE_PCK_CERT_CHAIN, "type " + cert.type());
    }
    List<X509Certificate> certs = new ArrayList<>();
    try {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      byte[] pem = cert.pemChain().getBytes(StandardCharsets.US_ASCII);
      for (var c : cf.generateCertificates(new ByteArrayInputStream(pem))) {
        certs.add((X509Certificate) c);
      }
    } catch (CertificateException | RuntimeException e) {
      throw new VerificationException(
          PCK_CHAIN_MALFORMED, "pck chain does not parse: " + e.getMessage(),
          "3 PEM certificates", "unparseable", e);
    }
    if (certs.size() != 3) {
      throw new VerificationException(
          PCK_CHAIN_MALFORMED, "pck chain length", "3 certificates", certs.size() + " certificates");
    }
    if (certs.get(0).getBasicConstraints() != -1) {
      throw new VerificationException(
          PCK_CHAIN_MALFORMED, "pck leaf is a CA certificate", "end entity",
          certs.get(0).getSubjectX500Principal().getName());
    }
    for (int i = 1; i < 3; i++) {
      if (certs.get(i).getBasicConstraints() == -1) {
        throw new VerificationException(
            PCK_CHAIN_MALFORMED, "certificate " + i + " of the pck chain is not a CA", "CA",
            certs.get(i).getSubjectX500Principal().getName());
      }
    }
    return List.copyOf(certs);
  }

  private void checkRootPinned(X509Certificate root) throws VerificationException {
    byte[] actual = root.getPublicKey().getEncoded();
    if (!MessageDigest.isEqual(pinnedRootKey, actual)) {
      throw new VerificationException(
          ROOT_NOT_PINNED, "chain root key is not the pinned root key",
          sha256Hex(pinnedRootKey), sha256Hex(actual));
    }
  }

  private static void checkSignedBy(X509Certificate cert, X509Certificate issuer, String what)
      throws VerificationException {
    String expected = issuer.getSubjectX500Principal().getName();
    String actual = cert.getIssuerX500Principal().getName();
    if (!cert.getIssuerX500Principal().equals(issuer.getSubjectX500Principal())) {
      throw new VerificationException(
          CHAIN_SIGNATURE_INVALID, what + " issuer name does not match", expected, actual);
    }
    try {
      cert.verify(issuer.getPublicKey());
    } catch (GeneralSecurityException e) {
      throw new VerificationException(
          CHAIN_SIGNATURE_INVALID, what + " signature does not verify: " + e.getMessage(),
          "signed by " + expected, "not signed by that key", e);
    }
  }

  private static void checkValidAt(X509Certificate c, Instant now) throws VerificationException {
    Instant notBefore = c.getNotBefore().toInstant();
    Instant notAfter = c.getNotAfter().toInstant();
    String subject = c.getSubjectX500Principal().getName();
    if (now.isBefore(notBefore)) {
      throw new VerificationException(
          CHAIN_NOT_YET_VALID, subject + " not yet valid", "now >= " + notBefore, now.toString());
    }
    if (now.isAfter(notAfter)) {
      throw new VerificationException(
          CHAIN_EXPIRED, subject + " expired", "now <= " + notAfter, now.toString());
    }
  }

  private static void checkEcdsa(
      PublicKey key, Blob signed, Blob rawSignature, VerificationException.Reason reason,
      String what) throws VerificationException {
    boolean ok;
    try {
      ok = EcP256.verify(key, signed, rawSignature);
    } catch (GeneralSecurityException e) {
      throw new VerificationException(
          reason, what + ": " + e.getMessage(), "valid signature", rawSignature.hex(), e);
    }
    if (!ok) {
      throw new VerificationException(reason, what, "valid signature", rawSignature.hex());
    }
  }

  private static PublicKey attestationKey(Blob raw) throws VerificationException {
    try {
      return EcP256.publicKeyFromRaw(raw);
    } catch (GeneralSecurityException e) {
      throw new VerificationException(
          QUOTE_SIGNATURE_INVALID, "attestation key is not a P-256 point: " + e.getMessage(),
          "P-256 point", raw.hex(), e);
    }
  }

  private static void checkQeBinding(SignatureData sig) throws VerificationException {
    byte[] expected = new byte[64];
    MessageDigest sha256 = sha256();
    sig.attestationKey().updateDigest(sha256);
    sig.qeAuthData().updateDigest(sha256);
    System.arraycopy(sha256.digest(), 0, expected, 0, 32);
    byte[] actual = sig.qeReport().reportData().toByteArray();
    if (!MessageDigest.isEqual(expected, actual)) {
      throw new VerificationException(
          QE_REPORT_BINDING_MISMATCH,
          "qe report data is not SHA-256(attestation key || qe auth data) || zeros",
          HEX.formatHex(expected), HEX.formatHex(actual));
    }
  }

  private static String sha256Hex(byte[] b) {
    return "sha256:" + HEX.formatHex(sha256().digest(b));
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
  }

  @Override
  public String toString() {
    return "QuoteSignatureVerifier[root " + sha256Hex(pinnedRootKey) + ", clock " + clock + "]";
  }
}
