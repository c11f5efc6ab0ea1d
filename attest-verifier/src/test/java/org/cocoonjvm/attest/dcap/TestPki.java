package org.cocoonjvm.attest.dcap;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.CRLReason;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.X509v2CRLBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CRLConverter;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A self-made P-256 PKI shaped like Intel's PCK hierarchy (root → PCK Platform CA → PCK leaf), for
 * revocation cases no real fixture has: Intel's CRLs revoke none of the fixtures' PCK leaves.
 */
final class TestPki {
  final KeyPair rootKey = ecKey();
  final KeyPair caKey = ecKey();
  final KeyPair leafKey = ecKey();
  final X509Certificate root;
  final X509Certificate ca;
  final X509Certificate leaf;
  private final Instant from;

  TestPki(Instant now) {
    from = now.minus(Duration.ofDays(30));
    Instant to = now.plus(Duration.ofDays(3650));
    root = cert("CN=Test SGX Root CA, O=Cocoon JVM tests", rootKey, "CN=Test SGX Root CA, O=Cocoon JVM tests",
        rootKey, 1, true, to);
    ca = cert("CN=Test SGX PCK Platform CA, O=Cocoon JVM tests", caKey, "CN=Test SGX Root CA, O=Cocoon JVM tests",
        rootKey, 2, true, to);
    leaf = cert("CN=Test SGX PCK Certificate, O=Cocoon JVM tests", leafKey,
        "CN=Test SGX PCK Platform CA, O=Cocoon JVM tests", caKey, 3, false, to);
  }

  /** A CRL by {@code issuer} (signed with {@code signingKey}) valid from a day ago until {@code nextUpdate}. */
  X509CRL crl(X509Certificate issuer, KeyPair signingKey, Instant nextUpdate, List<X509Certificate> revoked) {
    try {
      X509v2CRLBuilder b = new X509v2CRLBuilder(
          org.bouncycastle.asn1.x500.X500Name.getInstance(issuer.getSubjectX500Principal().getEncoded()),
          Date.from(nextUpdate.minus(Duration.ofDays(31))));
      b.setNextUpdate(Date.from(nextUpdate));
      for (X509Certificate c : revoked) b.addCRLEntry(c.getSerialNumber(), Date.from(from), CRLReason.keyCompromise);
      return new JcaX509CRLConverter().getCRL(
          b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signingKey.getPrivate())));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private X509Certificate cert(String subject, KeyPair subjectKey, String issuer, KeyPair issuerKey,
      long serial, boolean isCa, Instant to) {
    try {
      JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(new X500Principal(issuer),
          BigInteger.valueOf(serial), Date.from(from), Date.from(to), new X500Principal(subject),
          subjectKey.getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(isCa));
      return new JcaX509CertificateConverter().getCertificate(
          b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuerKey.getPrivate())));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  static KeyPair ecKey() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new ECGenParameterSpec("secp256r1"));
      return g.generateKeyPair();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
