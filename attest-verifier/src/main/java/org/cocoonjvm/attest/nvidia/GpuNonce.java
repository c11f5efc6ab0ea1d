package org.cocoonjvm.attest.nvidia;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;

/**
 * Binds GPU evidence to a TLS key: the worker asks its GPU for evidence with
 * {@code nonce = SHA-256("gpu-nonce:" ‖ TLS public key bytes)}, and a peer recomputes it from the
 * key of the certificate it is talking to (reference §5). Pass the same key bytes the TDX
 * report_data binding uses, which for Cocoon certificates is the raw 32-byte Ed25519 key.
 */
public final class GpuNonce {
  private static final byte[] LABEL = "gpu-nonce:".getBytes(StandardCharsets.US_ASCII);

  private GpuNonce() {}

  /** The 32-byte SPDM nonce for {@code tlsPublicKey}. */
  public static byte[] forTlsPublicKey(byte[] tlsPublicKey) {
    if (tlsPublicKey.length == 0) throw new IllegalArgumentException("empty TLS public key");
    try {
      MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
      sha256.update(LABEL);
      return sha256.digest(tlsPublicKey);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
  }
}
