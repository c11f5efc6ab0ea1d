package org.cocoonjvm.attest.nvidia;

import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.EVIDENCE_SIGNATURE_INVALID;
import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.FWID_MISMATCH;
import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.FWID_MISSING;
import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.NONCE_MISMATCH;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * Verifies NVIDIA Hopper GPU evidence (nvtrust {@code cc_admin} order, minus OCSP), stopping at the
 * first failure:
 *
 * <ol>
 *   <li>Evidence parses ({@link SpdmEvidence#parse}).
 *   <li>Device chain: exactly 5 P-384 certificates, leaf first, ending at the pinned NVIDIA Device
 *       Identity CA key, each signed by the next and valid at {@code clock.instant()}.
 *   <li>SPDM signature: ECDSA P-384/SHA-384 by the leaf key over request ‖ response-without-signature.
 *   <li>FWID: the last 48 bytes of the leaf's TCG DICE extension 2.23.133.5.4.1 equal the evidence's
 *       opaque FWID field, when the evidence has one (2023-era firmware does not).
 *   <li>Nonce: the request nonce equals the verifier's.
 * </ol>
 *
 * <p>The signature is checked before anything read from the signed bytes is trusted. Immutable
 * and thread-safe; the clock is read once per call. OCSP for the device chain needs the network
 * and is not done here.
 */
public final class GpuEvidenceVerifier {
  public static final String DICE_TCB_INFO_OID = "2.23.133.5.4.1";
  private static final HexFormat HEX = HexFormat.of();
  private static final int OCTET_STRING = 0x04;

  private final PinnedChain.Anchor deviceAnchor;

  private GpuEvidenceVerifier(PinnedChain.Anchor deviceAnchor) {
    this.deviceAnchor = deviceAnchor;
  }

  public static GpuEvidenceVerifier create(PublicKey pinnedDeviceRoot, Clock clock) {
    return new GpuEvidenceVerifier(PinnedChain.DEVICE.pinnedTo(pinnedDeviceRoot, clock));
  }

  /** Pins {@link NvidiaRoots#deviceIdentityCa()}. */
  public static GpuEvidenceVerifier create(Clock clock) {
    return create(NvidiaRoots.deviceIdentityCa().getPublicKey(), clock);
  }

  /**
   * @param evidence SPDM request ‖ response bytes
   * @param deviceChainPem the device certificate chain, PEM, leaf first
   * @param expectedNonce the 32-byte nonce this verifier asked the GPU to sign
   */
  public VerifiedGpuEvidence verify(byte[] evidence, byte[] deviceChainPem, byte[] expectedNonce)
      throws GpuVerificationException {
    return verify(evidence, PinnedChain.DEVICE.parse(deviceChainPem), expectedNonce);
  }

  public VerifiedGpuEvidence verify(
      byte[] evidence, List<X509Certificate> deviceChain, byte[] expectedNonce)
      throws GpuVerificationException {
    if (expectedNonce.length != SpdmEvidence.NONCE_LENGTH) {
      throw new IllegalArgumentException("nonce must be 32 bytes, got " + expectedNonce.length);
    }
    SpdmEvidence parsed = SpdmEvidence.parse(evidence);
    X509Certificate leaf = deviceAnchor.verify(deviceChain);
    checkSignature(leaf.getPublicKey(), parsed);
    String certFwid = certificateFwid(leaf);
    Optional<String> evidenceFwid = parsed.fwidHex();
    if (evidenceFwid.isPresent() && !evidenceFwid.get().equals(certFwid)) {
      throw new GpuVerificationException(FWID_MISMATCH,
          "leaf certificate FWID differs from the evidence's opaque FWID", certFwid,
          evidenceFwid.get());
    }
    byte[] nonce = parsed.requestNonce();
    if (!MessageDigest.isEqual(nonce, expectedNonce)) {
      throw new GpuVerificationException(NONCE_MISMATCH, "request nonce is not the verifier's",
          HEX.formatHex(expectedNonce), HEX.formatHex(nonce));
    }
    return new VerifiedGpuEvidence(parsed, leaf, certFwid);
  }

  private static void checkSignature(PublicKey leafKey, SpdmEvidence evidence)
      throws GpuVerificationException {
    boolean ok;
    try {
      Signature s = Signature.getInstance("SHA384withECDSAinP1363Format");
      s.initVerify(leafKey);
      s.update(evidence.signedBytes());
      ok = s.verify(evidence.signature());
    } catch (GeneralSecurityException e) {
      throw new GpuVerificationException(EVIDENCE_SIGNATURE_INVALID,
          "SPDM signature cannot be checked: " + e.getMessage(), "valid P-384 signature",
          HEX.formatHex(evidence.signature()), e);
    }
    if (!ok) {
      throw new GpuVerificationException(EVIDENCE_SIGNATURE_INVALID,
          "SPDM signature does not verify with the device leaf key", "valid P-384 signature",
          HEX.formatHex(evidence.signature()));
    }
  }

  /**
   * The leaf's FWID: the extension value ends with the SHA-384 FWID digest as an OCTET STRING of
   * 48 bytes (nvtrust takes the last 48 bytes; the tag and length before them are checked too).
   */
  static String certificateFwid(X509Certificate leaf) throws GpuVerificationException {
    byte[] wrapped = leaf.getExtensionValue(DICE_TCB_INFO_OID);
    if (wrapped == null) {
      throw new GpuVerificationException(FWID_MISSING,
          "device leaf " + PinnedChain.subject(leaf) + " has no TCG DICE TcbInfo extension",
          DICE_TCB_INFO_OID, "absent");
    }
    byte[] value = unwrapOctetString(wrapped);
    int n = SpdmEvidence.FWID_LENGTH;
    if (value.length < n + 2 || value[value.length - n - 2] != OCTET_STRING
        || value[value.length - n - 1] != n) {
      throw new GpuVerificationException(FWID_MISSING,
          "TCG DICE TcbInfo extension does not end with a 48-byte digest", "04 30 ‖ 48 bytes",
          HEX.formatHex(value));
    }
    return HEX.formatHex(Arrays.copyOfRange(value, value.length - n, value.length));
  }

  /** {@code getExtensionValue} returns the DER OCTET STRING around the extension value. */
  private static byte[] unwrapOctetString(byte[] der) throws GpuVerificationException {
    if (der.length >= 2 && der[0] == OCTET_STRING) {
      int len = der[1] & 0xff;
      int off = 2;
      if (len > 0x80) {
        int count = len & 0x7f;
        len = 0;
        for (int i = 0; i < count && off < der.length; i++) len = len << 8 | (der[off++] & 0xff);
      }
      if (off + len == der.length) return Arrays.copyOfRange(der, off, der.length);
    }
    throw new GpuVerificationException(FWID_MISSING, "TCG DICE TcbInfo extension is not DER",
        "OCTET STRING", HEX.formatHex(der));
  }
}
