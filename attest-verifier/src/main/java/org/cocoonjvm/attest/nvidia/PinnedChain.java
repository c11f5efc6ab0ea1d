package org.cocoonjvm.attest.nvidia;

import java.io.ByteArrayInputStream;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason;

/**
 * A leaf-first certificate chain of fixed length ending at a pinned root key: the device identity
 * chain (5 certificates) and the RIM signing chain (4). Each certificate must be issued and signed
 * by the next, the last must be self-signed with the pinned key, and all must be valid at the
 * verifier's instant. Plain signature checks rather than PKIX: NVIDIA's device certificates carry
 * critical extensions the JDK's PKIX validator does not know.
 */
enum PinnedChain {
  DEVICE(5, Reason.DEVICE_CHAIN_MALFORMED, Reason.DEVICE_ROOT_NOT_PINNED,
      Reason.DEVICE_CHAIN_SIGNATURE_INVALID, Reason.DEVICE_CHAIN_EXPIRED,
      Reason.DEVICE_CHAIN_NOT_YET_VALID),
  RIM(4, Reason.RIM_CHAIN_INVALID, Reason.RIM_CHAIN_INVALID, Reason.RIM_CHAIN_INVALID,
      Reason.RIM_CHAIN_EXPIRED, Reason.RIM_CHAIN_NOT_YET_VALID);

  private static final HexFormat HEX = HexFormat.of();
  private static final int P384_BITS = 384;

  private final int length;
  private final Reason malformed;
  private final Reason notPinned;
  private final Reason signatureInvalid;
  private final Reason expired;
  private final Reason notYetValid;

  PinnedChain(int length, Reason malformed, Reason notPinned, Reason signatureInvalid,
      Reason expired, Reason notYetValid) {
    this.length = length;
    this.malformed = malformed;
    this.notPinned = notPinned;
    this.signatureInvalid = signatureInvalid;
    this.expired = expired;
    this.notYetValid = notYetValid;
  }

  /** This chain kind pinned to {@code rootKey} and checked at {@code clock}'s instant. */
  Anchor pinnedTo(PublicKey rootKey, Clock clock) {
    return new Anchor(this, Objects.requireNonNull(rootKey, "pinned root key"),
        Objects.requireNonNull(clock, "clock"));
  }

  /** What each NVIDIA verifier holds: the chain it checks, the root it pins, the clock it reads. */
  record Anchor(PinnedChain chain, PublicKey rootKey, Clock clock) {
    /** Verifies {@code certs} (leaf first) at the clock's current instant; returns the leaf. */
    X509Certificate verify(List<X509Certificate> certs) throws GpuVerificationException {
      return chain.verify(certs, rootKey, clock.instant());
    }
  }

  /** Parses concatenated PEM (or DER) certificates, leaf first. */
  List<X509Certificate> parse(byte[] pemOrDer) throws GpuVerificationException {
    try {
      Collection<? extends java.security.cert.Certificate> certs =
          CertificateFactory.getInstance("X.509")
              .generateCertificates(new ByteArrayInputStream(pemOrDer));
      List<X509Certificate> out = new ArrayList<>();
      for (var c : certs) out.add((X509Certificate) c);
      return out;
    } catch (CertificateException | RuntimeException e) {
      throw new GpuVerificationException(malformed, name().toLowerCase() + " chain does not parse: "
          + e.getMessage(), length + " certificates", "unparseable", e);
    }
  }

  /** Checks {@code chain} (leaf first) against {@code pinnedRoot} at {@code now}; returns the leaf. */
  X509Certificate verify(List<X509Certificate> chain, PublicKey pinnedRoot, Instant now)
      throws GpuVerificationException {
    String what = name().toLowerCase() + " chain";
    if (chain.size() != length) {
      throw new GpuVerificationException(malformed, what + " length",
          length + " certificates", chain.size() + " certificates");
    }
    for (X509Certificate c : chain) {
      if (!(c.getPublicKey() instanceof ECPublicKey ec)
          || ec.getParams().getCurve().getField().getFieldSize() != P384_BITS) {
        throw new GpuVerificationException(malformed, what + " certificate key is not P-384",
            "EC P-384", c.getPublicKey().getAlgorithm() + " " + subject(c));
      }
    }
    X509Certificate root = chain.get(length - 1);
    byte[] pinned = pinnedRoot.getEncoded();
    byte[] actual = root.getPublicKey().getEncoded();
    if (!MessageDigest.isEqual(pinned, actual)) {
      throw new GpuVerificationException(notPinned, what + " root key is not the pinned root key",
          sha256Hex(pinned), sha256Hex(actual) + " (" + subject(root) + ")");
    }
    for (int i = 0; i < length; i++) {
      X509Certificate issuer = chain.get(Math.min(i + 1, length - 1));
      checkSignedBy(chain.get(i), issuer, what);
    }
    for (X509Certificate c : chain) {
      if (now.isBefore(c.getNotBefore().toInstant())) {
        throw new GpuVerificationException(notYetValid, subject(c) + " not yet valid",
            "now >= " + c.getNotBefore().toInstant(), now.toString());
      }
      if (now.isAfter(c.getNotAfter().toInstant())) {
        throw new GpuVerificationException(expired, subject(c) + " expired",
            "now <= " + c.getNotAfter().toInstant(), now.toString());
      }
    }
    return chain.get(0);
  }

  private void checkSignedBy(X509Certificate cert, X509Certificate issuer, String what)
      throws GpuVerificationException {
    if (!cert.getIssuerX500Principal().equals(issuer.getSubjectX500Principal())) {
      throw new GpuVerificationException(signatureInvalid,
          what + ": issuer name of " + subject(cert) + " does not match the next certificate",
          subject(issuer), cert.getIssuerX500Principal().getName());
    }
    try {
      cert.verify(issuer.getPublicKey());
    } catch (GeneralSecurityException e) {
      throw new GpuVerificationException(signatureInvalid,
          what + ": " + subject(cert) + " signature does not verify: " + e.getMessage(),
          "signed by " + subject(issuer), "not signed by that key", e);
    }
  }

  static String subject(X509Certificate c) {
    return c.getSubjectX500Principal().getName();
  }

  static String sha256Hex(byte[] b) {
    try {
      return "sha256:" + HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
  }
}
