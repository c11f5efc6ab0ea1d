package org.cocoonjvm.attest.nvidia;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.attest.nvidia.GpuEvidenceVerifierTest.assertCode;
import static org.cocoonjvm.attest.nvidia.NvidiaFixtures.HEX;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
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
import org.junit.jupiter.api.Test;

/**
 * FWID and key-type cases no real chain provides: the 2025 sample evidence re-signed by a
 * self-made 5-certificate chain (BouncyCastle) whose leaf carries a chosen FWID, or none.
 */
class DeviceTestPkiTest {
  static final Instant NOW = Instant.parse("2025-01-01T00:00:00Z");
  static final String EVIDENCE_FWID =
      "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d";

  record Pki(List<X509Certificate> chain, KeyPair leafKey) {}

  static KeyPair key(String curve) throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec(curve));
    return g.generateKeyPair();
  }

  /** Root → 3 CAs → leaf, all P-384 unless {@code intermediateCurve} says otherwise; leaf FWID optional. */
  static Pki pki(byte[] leafFwid, String intermediateCurve) throws Exception {
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
          BigInteger.valueOf(i + 1), Date.from(NOW.minusSeconds(86400)), Date.from(NOW.plusSeconds(86400)),
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
    return new Pki(List.copyOf(rootFirst.reversed()), keys.get(4));
  }

  /** The sample evidence with its signature replaced by one from {@code key}. */
  static byte[] resigned(KeyPair key) throws Exception {
    byte[] evidence = NvidiaFixtures.hexEvidence(GpuEvidenceVerifierTest.SAMPLE);
    SpdmEvidence parsed = SpdmEvidence.parse(evidence);
    Signature s = Signature.getInstance("SHA384withECDSAinP1363Format");
    s.initSign(key.getPrivate());
    s.update(parsed.signedBytes());
    byte[] sig = s.sign();
    System.arraycopy(sig, 0, evidence, parsed.signedBytes().length, sig.length);
    return evidence;
  }

  static VerifiedGpuEvidence verify(Pki pki) throws Exception {
    return GpuEvidenceVerifier.create(pki.chain().get(4).getPublicKey(), NvidiaFixtures.clockAt(NOW))
        .verify(resigned(pki.leafKey()), pki.chain(), HEX.parseHex(NvidiaFixtures.SAMPLE_2025_NONCE));
  }

  @Test
  void matchingFwid_passes() throws Exception {
    assertThat(verify(pki(HEX.parseHex(EVIDENCE_FWID), "secp384r1")).certificateFwidHex()).isEqualTo(EVIDENCE_FWID);
  }

  @Test
  void otherFwid_isAMismatch() {
    byte[] other = HEX.parseHex(EVIDENCE_FWID);
    other[0] ^= 1;
    assertCode(() -> verify(pki(other, "secp384r1")), "fwid_mismatch");
  }

  @Test
  void leafWithoutTheDiceExtension_hasNoFwid() {
    assertCode(() -> verify(pki(null, "secp384r1")), "fwid_missing");
  }

  @Test
  void aP256Intermediate_isMalformed() {
    assertCode(() -> verify(pki(HEX.parseHex(EVIDENCE_FWID), "secp256r1")), "device_chain_malformed");
  }
}
