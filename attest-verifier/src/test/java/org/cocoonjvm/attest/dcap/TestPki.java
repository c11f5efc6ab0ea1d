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
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.CRLReason;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.X509v2CRLBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CRLConverter;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A self-made P-256 PKI shaped like Intel's (root → PCK Platform CA → PCK leaf, root → TCB
 * Signing), for revocation cases no real fixture has: Intel's CRLs revoke none of the fixtures'
 * PCK leaves.
 */
final class TestPki {
  final KeyPair rootKey = ecKey();
  final KeyPair caKey = ecKey();
  final KeyPair leafKey = ecKey();
  final KeyPair tcbSigningKey = ecKey();
  final X509Certificate root;
  final X509Certificate ca;
  final X509Certificate leaf;
  /** Signs TCB Info and QE Identity, like Intel's TCB Signing certificate. */
  final X509Certificate tcbSigner;
  private final Instant from;

  /** The leaf carries {@code template}'s SGX extension (FMSPC, PCE-ID, TCB), so TCB matching works. */
  TestPki(Instant now, X509Certificate template) {
    from = now.minus(Duration.ofDays(30));
    Instant to = now.plus(Duration.ofDays(3650));
    String rootDn = "CN=Test SGX Root CA, O=Cocoon JVM tests";
    String caDn = "CN=Test SGX PCK Platform CA, O=Cocoon JVM tests";
    root = cert(rootDn, rootKey, rootDn, rootKey, 1, true, to, null);
    ca = cert(caDn, caKey, rootDn, rootKey, 2, true, to, null);
    leaf = cert("CN=Test SGX PCK Certificate, O=Cocoon JVM tests", leafKey, caDn, caKey, 3, false, to, template);
    tcbSigner = cert("CN=Test SGX TCB Signing, O=Cocoon JVM tests", tcbSigningKey, rootDn, rootKey, 4, false, to, null);
  }

  /** Raw r‖s ECDSA-SHA256 by the TCB signing key over {@code json}'s UTF-8 bytes, as PCS signs. */
  byte[] signJson(String json) {
    try {
      java.security.Signature s = java.security.Signature.getInstance("SHA256withECDSAinP1363Format");
      s.initSign(tcbSigningKey.getPrivate());
      s.update(json.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      return s.sign();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
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
      long serial, boolean isCa, Instant to, X509Certificate sgxExtensionFrom) {
    try {
      JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(new X500Principal(issuer),
          BigInteger.valueOf(serial), Date.from(from), Date.from(to), new X500Principal(subject),
          subjectKey.getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(isCa));
      if (sgxExtensionFrom != null) {
        byte[] wrapped = sgxExtensionFrom.getExtensionValue(PckExtensions.SGX_EXTENSION_OID);
        b.addExtension(new ASN1ObjectIdentifier(PckExtensions.SGX_EXTENSION_OID), false,
            ASN1OctetString.getInstance(wrapped).getOctets());
      }
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
