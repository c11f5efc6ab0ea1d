package org.cocoonjvm.attest.nvidia;

import org.cocoonjvm.attest.MismatchException;
import org.cocoonjvm.attest.ReasonCode;

/**
 * NVIDIA GPU evidence or a RIM failed a verification step.
 *
 * <p>{@link #code()} is stable (metrics, logs, the CLI's JSON); {@link #expected()} and
 * {@link #actual()} carry the values that disagreed; the message is for humans.
 */
public final class GpuVerificationException extends MismatchException {

  /** Why verification stopped. The string codes are part of the module's contract. */
  public enum Reason implements ReasonCode {
    /** The SPDM GET_MEASUREMENTS request ‖ response does not parse (lengths, codes, TLVs). */
    EVIDENCE_MALFORMED,
    /** The evidence is for a GPU architecture this verifier does not know (only HOPPER). */
    UNSUPPORTED_ARCHITECTURE,
    /** The device certificate chain is not exactly 5 parseable P-384 certificates, leaf first. */
    DEVICE_CHAIN_MALFORMED,
    /** The device chain's root key is not the pinned NVIDIA Device Identity CA key. */
    DEVICE_ROOT_NOT_PINNED,
    /** A device certificate is not signed by the next one (name or signature). */
    DEVICE_CHAIN_SIGNATURE_INVALID,
    /** A device certificate's notAfter is before the verifier's clock. */
    DEVICE_CHAIN_EXPIRED,
    /** A device certificate's notBefore is after the verifier's clock. */
    DEVICE_CHAIN_NOT_YET_VALID,
    /** The SPDM signature does not verify with the device leaf key. */
    EVIDENCE_SIGNATURE_INVALID,
    /** The leaf has no TCG DICE extension 2.23.133.5.4.1, or the evidence has no FWID field. */
    FWID_MISSING,
    /** The leaf certificate's FWID differs from the evidence's opaque FWID. */
    FWID_MISMATCH,
    /** The request nonce is not the verifier's nonce. */
    NONCE_MISMATCH,
    /** A RIM is not a well-formed signed SWID tag (XML, signature element, measurements). */
    RIM_MALFORMED,
    /** The RIM's XML signature or one of its references does not verify. */
    RIM_SIGNATURE_INVALID,
    /** The RIM signing chain is not 4 certificates ending at the pinned CoRIM signing root. */
    RIM_CHAIN_INVALID,
    /** A RIM signing certificate's notAfter is before the verifier's clock. */
    RIM_CHAIN_EXPIRED,
    /** A RIM signing certificate's notBefore is after the verifier's clock. */
    RIM_CHAIN_NOT_YET_VALID,
    /** A RIM's colloquialVersion is not the driver / VBIOS version the evidence reports. */
    RIM_VERSION_MISMATCH,
    /** A measurement index is active in both the driver and the VBIOS RIM. */
    RIM_INDEX_CONFLICT,
    /** At least one active golden measurement differs from the runtime value. */
    MEASUREMENT_MISMATCH;
  }

  GpuVerificationException(Reason reason, String detail, String expected, String actual) {
    this(reason, detail, expected, actual, null);
  }

  GpuVerificationException(
      Reason reason, String detail, String expected, String actual, Throwable cause) {
    super(reason, detail, expected, actual, cause);
  }

  public Reason reason() {
    return (Reason) reasonCode();
  }
}
