package org.cocoonjvm.attest.nvidia;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DEROctetString;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A test GPU: a self-made 5-certificate device chain (root → 3 CAs → leaf, BouncyCastle) and the
 * real 2025 sample evidence with a chosen nonce, re-signed by the leaf. Real NVIDIA evidence cannot
 * carry a nonce of our choosing, so tests of the nonce binding pin this chain's root instead.
 */
public final class TestGpuDevice {
  /** The FWID in the sample evidence's opaque data. */
  public static final String EVIDENCE_FWID =
      "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d";

  private final List<X509Certificate> chain;
  private final KeyPair leafKey;

  private TestGpuDevice(List<X509Certificate> chain, KeyPair leafKey) {
    this.chain = chain;
    this.leafKey = leafKey;
  }

  static KeyPair key(String curve) throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec(curve));
    return g.generateKeyPair();
  }

  /** P-384 throughout, valid a day either side of {@code now}, leaf FWID = the sample's. */
  public static TestGpuDevice create(Instant now) throws Exception {
    return create(HexFormat.of().parseHex(EVIDENCE_FWID), "secp384r1", now);
  }

  /** Root → 3 CAs → leaf, P-384 except the third certificate's {@code intermediateCurve}; leaf FWID optional. */
  static TestGpuDevice create(byte[] leafFwid, String intermediateCurve, Instant now) throws Exception {
    List<String> curves = new ArrayList<>();
    List<KeyPair> keys = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      curves.add(i == 2 ? intermediateCurve : "secp384r1");
      keys.add(key(curves.get(i)));
    }
    List<X509Certificate> rootFirst = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      boolean leaf = i == 4;
      String issuer = "CN=Test Device " + Math.max(i - 1, 0);
      var b = new JcaX509v3CertificateBuilder(new X500Principal(i == 0 ? "CN=Test Device 0" : issuer),
          BigInteger.valueOf(i + 1), Date.from(now.minusSeconds(86400)), Date.from(now.plusSeconds(86400)),
          new X500Principal("CN=Test Device " + i), keys.get(i).getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(!leaf));
      if (leaf && leafFwid != null) {
        b.addExtension(new ASN1ObjectIdentifier(GpuEvidenceVerifier.DICE_TCB_INFO_OID), false,
            new DERSequence(new DEROctetString(leafFwid)));
      }
      int signerIndex = Math.max(i - 1, 0);
      KeyPair signer = keys.get(signerIndex);
      String alg = curves.get(signerIndex).equals("secp384r1") ? "SHA384withECDSA" : "SHA256withECDSA";
      rootFirst.add(new JcaX509CertificateConverter().getCertificate(
          b.build(new JcaContentSignerBuilder(alg).build(signer.getPrivate()))));
    }
    return new TestGpuDevice(List.copyOf(rootFirst.reversed()), keys.get(4));
  }

  /** Leaf first. */
  public List<X509Certificate> chain() {
    return chain;
  }

  public PublicKey rootKey() {
    return chain.get(4).getPublicKey();
  }

  public byte[] chainPem() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Base64.Encoder b64 = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII));
    for (X509Certificate c : chain) {
      out.write(("-----BEGIN CERTIFICATE-----\n" + b64.encodeToString(c.getEncoded()) + "\n-----END CERTIFICATE-----\n")
          .getBytes(StandardCharsets.US_ASCII));
    }
    return out.toByteArray();
  }

  /** The sample evidence, its signature replaced by one from this device's leaf. */
  byte[] resignedSample() throws Exception {
    return sign(NvidiaFixtures.hexEvidence(GpuEvidenceVerifierTest.SAMPLE));
  }

  /** The sample evidence asking for {@code nonce}, signed by this device's leaf. Skips when the fixtures are absent. */
  public byte[] sampleWithNonce(byte[] nonce) throws Exception {
    byte[] evidence = NvidiaFixtures.hexEvidence(GpuEvidenceVerifierTest.SAMPLE);
    System.arraycopy(nonce, 0, evidence, 4, SpdmEvidence.NONCE_LENGTH);
    return sign(evidence);
  }

  private byte[] sign(byte[] evidence) throws Exception {
    SpdmEvidence parsed = SpdmEvidence.parse(evidence);
    Signature s = Signature.getInstance("SHA384withECDSAinP1363Format");
    s.initSign(leafKey.getPrivate());
    s.update(parsed.signedBytes());
    byte[] sig = s.sign();
    System.arraycopy(sig, 0, evidence, parsed.signedBytes().length, sig.length);
    return evidence;
  }
}
