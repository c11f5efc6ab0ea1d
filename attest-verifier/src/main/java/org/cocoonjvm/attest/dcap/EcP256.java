package org.cocoonjvm.attest.dcap;

import java.math.BigInteger;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import org.cocoonjvm.attest.quote.Blob;

/** ECDSA P-256 with the raw encodings DCAP uses: keys as X‖Y, signatures as r‖s (64 bytes each). */
final class EcP256 {
  static final int RAW_KEY_SIZE = 64;
  static final int RAW_SIGNATURE_SIZE = 64;

  private EcP256() {}

  /** A P-256 public key from 64 raw bytes X‖Y (big-endian, no 0x04 prefix). */
  static PublicKey publicKeyFromRaw(Blob raw) throws GeneralSecurityException {
    if (raw.length() != RAW_KEY_SIZE) {
      throw new GeneralSecurityException("raw P-256 key must be 64 bytes, got " + raw.length());
    }
    byte[] b = raw.toByteArray();
    BigInteger x = new BigInteger(1, java.util.Arrays.copyOfRange(b, 0, 32));
    BigInteger y = new BigInteger(1, java.util.Arrays.copyOfRange(b, 32, 64));
    AlgorithmParameters params = AlgorithmParameters.getInstance("EC");
    params.init(new ECGenParameterSpec("secp256r1"));
    ECParameterSpec spec = params.getParameterSpec(ECParameterSpec.class);
    return KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(new ECPoint(x, y), spec));
  }

  /**
   * Verifies a raw r‖s ECDSA-SHA256 signature. Returns false for a well-formed signature that
   * does not verify; throws where the key or signature cannot be used at all.
   */
  static boolean verify(PublicKey key, Blob signed, Blob rawSignature)
      throws GeneralSecurityException {
    if (rawSignature.length() != RAW_SIGNATURE_SIZE) {
      throw new GeneralSecurityException(
          "raw ECDSA signature must be 64 bytes, got " + rawSignature.length());
    }
    Signature s = Signature.getInstance("SHA256withECDSAinP1363Format");
    s.initVerify(key);
    s.update(signed.toByteArray());
    return s.verify(rawSignature.toByteArray());
  }
}
