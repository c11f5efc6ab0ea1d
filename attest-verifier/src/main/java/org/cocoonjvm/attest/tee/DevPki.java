package org.cocoonjvm.attest.tee;

import java.io.StringWriter;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPrivateKeySpec;
import java.security.spec.ECPublicKeySpec;
import java.security.interfaces.ECPublicKey;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.ASN1EncodableVector;
import org.bouncycastle.asn1.ASN1Enumerated;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DEROctetString;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x9.ECNamedCurveTable;
import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.cert.X509v2CRLBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CRLConverter;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The development TEE's certificates, shaped like Intel's: a self-signed root, a "PCK Platform CA"
 * under it, a PCK leaf carrying the SGX extension (FMSPC, PCE-ID, TCB components), a TCB signing
 * certificate, and empty CRLs for the root and the Platform CA. All P-256 with ECDSA-SHA256, with
 * Intel's critical basicConstraints/keyUsage and key identifiers (no CRL distribution points: the
 * CRLs travel in the collateral).
 *
 * <p>Keys are derived from a seed, so every process given the same seed has the same root, CA and
 * signer keys: a gateway can then verify a worker's dev quotes with collateral it makes itself.
 */
final class DevPki {
  static final String SGX_EXTENSION_OID = "1.2.840.113741.1.13.1";
  private static final X9ECParameters P256 = ECNamedCurveTable.getByName("secp256r1");

  final KeyPair rootKey;
  final KeyPair pckCaKey;
  final KeyPair pckKey;
  final KeyPair tcbSignerKey;
  final X509Certificate root;
  final X509Certificate pckCa;
  final X509Certificate pck;
  final X509Certificate tcbSigner;
  final X509CRL rootCrl;
  final X509CRL pckCrl;

  /**
   * @param notBefore start of every certificate's and CRL's validity
   * @param notAfter end of every certificate's validity; CRLs end at {@code crlNextUpdate}
   */
  DevPki(byte[] seed, byte[] fmspc, byte[] pceId, int[] pckTcb, Instant notBefore, Instant notAfter, Instant crlNextUpdate) {
    try {
      rootKey = key(seed, "root");
      pckCaKey = key(seed, "pck-ca");
      pckKey = key(seed, "pck-leaf");
      tcbSignerKey = key(seed, "tcb-signer");
      X500Name rootName = name("Cocoon JVM Dev TEE Root CA (not hardware-backed)");
      X500Name caName = name("Cocoon JVM Dev TEE PCK Platform CA");
      root = cert(rootName, rootName, rootKey.getPublic(), rootKey, 1, notBefore, notAfter, 1, null);
      pckCa = cert(rootName, caName, pckCaKey.getPublic(), rootKey, 2, notBefore, notAfter, 0, null);
      pck = cert(caName, name("Cocoon JVM Dev TEE SGX PCK Certificate"), pckKey.getPublic(), pckCaKey, 3,
          notBefore, notAfter, -1, sgxExtension(fmspc, pceId, pckTcb));
      tcbSigner = cert(rootName, name("Cocoon JVM Dev TEE SGX TCB Signing"), tcbSignerKey.getPublic(), rootKey, 4,
          notBefore, notAfter, -1, null);
      rootCrl = crl(rootName, rootKey.getPrivate(), notBefore, crlNextUpdate);
      pckCrl = crl(caName, pckCaKey.getPrivate(), notBefore, crlNextUpdate);
    } catch (GeneralSecurityException | OperatorCreationException | java.io.IOException e) {
      throw new IllegalStateException("cannot build the development TEE PKI", e);
    }
  }

  /** A P-256 key pair whose private scalar is SHA-256(seed ‖ label) reduced into [1, n-1]. */
  static KeyPair key(byte[] seed, String label) throws GeneralSecurityException {
    MessageDigest d = MessageDigest.getInstance("SHA-256");
    d.update(seed);
    d.update((byte) 0);
    d.update(label.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    BigInteger n = P256.getN();
    BigInteger s = new BigInteger(1, d.digest()).mod(n.subtract(BigInteger.ONE)).add(BigInteger.ONE);
    org.bouncycastle.math.ec.ECPoint q = P256.getG().multiply(s).normalize();
    KeyFactory kf = KeyFactory.getInstance("EC");
    ECParameterSpec spec = jdkP256Spec();
    PublicKey pub = kf.generatePublic(new ECPublicKeySpec(
        new ECPoint(q.getAffineXCoord().toBigInteger(), q.getAffineYCoord().toBigInteger()), spec));
    PrivateKey priv = kf.generatePrivate(new ECPrivateKeySpec(s, spec));
    return new KeyPair(pub, priv);
  }

  private static ECParameterSpec jdkP256Spec() throws GeneralSecurityException {
    java.security.AlgorithmParameters p = java.security.AlgorithmParameters.getInstance("EC");
    p.init(new java.security.spec.ECGenParameterSpec("secp256r1"));
    return p.getParameterSpec(ECParameterSpec.class);
  }

  private static X500Name name(String cn) {
    return new X500Name("CN=" + cn + ", O=Cocoon JVM development, C=XX");
  }

  private static ContentSigner signer(PrivateKey key) throws OperatorCreationException {
    return new JcaContentSignerBuilder("SHA256withECDSA").build(key);
  }

  /** @param pathLen -1 for an end entity, else a CA with that path length */
  private static X509Certificate cert(X500Name issuer, X500Name subject, PublicKey key, KeyPair issuerKey, long serial,
      Instant notBefore, Instant notAfter, int pathLen, DERSequence sgxExtension)
      throws GeneralSecurityException, OperatorCreationException, java.io.IOException {
    JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuer, BigInteger.valueOf(serial),
        Date.from(notBefore), Date.from(notAfter), subject, key);
    JcaX509ExtensionUtils ids = new JcaX509ExtensionUtils();
    b.addExtension(Extension.subjectKeyIdentifier, false, ids.createSubjectKeyIdentifier(key));
    b.addExtension(Extension.authorityKeyIdentifier, false, ids.createAuthorityKeyIdentifier(issuerKey.getPublic()));
    if (pathLen >= 0) {
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(pathLen));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
    } else {
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.nonRepudiation));
    }
    if (sgxExtension != null) b.addExtension(new ASN1ObjectIdentifier(SGX_EXTENSION_OID), false, sgxExtension);
    return new JcaX509CertificateConverter().getCertificate(b.build(signer(issuerKey.getPrivate())));
  }

  private static X509CRL crl(X500Name issuer, PrivateKey key, Instant thisUpdate, Instant nextUpdate)
      throws GeneralSecurityException, OperatorCreationException {
    X509v2CRLBuilder b = new X509v2CRLBuilder(issuer, Date.from(thisUpdate));
    b.setNextUpdate(Date.from(nextUpdate));
    return new JcaX509CRLConverter().getCRL(b.build(signer(key)));
  }

  /**
   * Intel's PCK extension: SEQUENCE of {OID, value} for PPID (.1), TCB (.2: sixteen component
   * SVNs .2.1–.2.16, PCESVN .2.17, CPUSVN .2.18), PCE-ID (.3), FMSPC (.4) and SGX type (.5).
   */
  private static DERSequence sgxExtension(byte[] fmspc, byte[] pceId, int[] tcb) {
    ASN1ObjectIdentifier base = new ASN1ObjectIdentifier(SGX_EXTENSION_OID);
    ASN1EncodableVector tcbEntries = new ASN1EncodableVector();
    byte[] cpuSvn = new byte[16];
    for (int i = 0; i < 16; i++) {
      tcbEntries.add(pair(base.branch("2." + (i + 1)), new ASN1Integer(tcb[i])));
      cpuSvn[i] = (byte) tcb[i];
    }
    tcbEntries.add(pair(base.branch("2.17"), new ASN1Integer(tcb[16])));
    tcbEntries.add(pair(base.branch("2.18"), new DEROctetString(cpuSvn)));
    ASN1EncodableVector v = new ASN1EncodableVector();
    v.add(pair(base.branch("1"), new DEROctetString(new byte[16])));
    v.add(pair(base.branch("2"), new DERSequence(tcbEntries)));
    v.add(pair(base.branch("3"), new DEROctetString(pceId)));
    v.add(pair(base.branch("4"), new DEROctetString(fmspc)));
    v.add(pair(base.branch("5"), new ASN1Enumerated(0)));
    return new DERSequence(v);
  }

  private static DERSequence pair(ASN1ObjectIdentifier oid, org.bouncycastle.asn1.ASN1Encodable value) {
    return new DERSequence(new org.bouncycastle.asn1.ASN1Encodable[] {oid, value});
  }

  static String pem(List<?> objects) {
    StringWriter w = new StringWriter();
    try (JcaPEMWriter p = new JcaPEMWriter(w)) {
      for (Object o : objects) p.writeObject(o);
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
    return w.toString();
  }

  /** Raw X‖Y (64 bytes) of a P-256 key, as DCAP carries keys. */
  static byte[] rawKey(PublicKey key) {
    ECPublicKey ec = (ECPublicKey) key;
    byte[] out = new byte[64];
    copy32(ec.getW().getAffineX(), out, 0);
    copy32(ec.getW().getAffineY(), out, 32);
    return out;
  }

  private static void copy32(BigInteger v, byte[] out, int off) {
    byte[] b = v.toByteArray();
    int n = Math.min(b.length, 32);
    System.arraycopy(b, b.length - n, out, off + 32 - n, n);
  }
}
