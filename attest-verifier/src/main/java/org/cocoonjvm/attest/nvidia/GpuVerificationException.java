package org.cocoonjvm.attest.nvidia;

/**
 * NVIDIA GPU evidence or a RIM failed a verification step.
 *
 * <p>{@link #code()} is stable (metrics, logs, the CLI's JSON); {@link #expected()} and
 * {@link #actual()} carry the values that disagreed; the message is for humans.
 */
public final class GpuVerificationException extends Exception {

  /** Why verification stopped. The string codes are part of the module's contract. */
  public enum Reason {
    /** The SPDM GET_MEASUREMENTS request ‖ response does not parse (lengths, codes, TLVs). */
    EVIDENCE_MALFORMED("evidence_malformed"),
    /** The evidence is for a GPU architecture this verifier does not know (only HOPPER). */
    UNSUPPORTED_ARCHITECTURE("unsupported_architecture"),
    /** The device certificate chain is not exactly 5 parseable P-384 certificates, leaf first. */
    DEVICE_CHAIN_MALFORMED("device_chain_malformed"),
    /** The device chain's root key is not the pinned NVIDIA Device Identity CA key. */
    DEVICE_ROOT_NOT_PINNED("device_root_not_pinned"),
    /** A device certificate is not signed by the next one (name or signature). */
    DEVICE_CHAIN_SIGNATURE_INVALID("device_chain_signature_invalid"),
    /** A device certificate's notAfter is before the verifier's clock. */
    DEVICE_CHAIN_EXPIRED("device_chain_expired"),
    /** A device certificate's notBefore is after the verifier's clock. */
    DEVICE_CHAIN_NOT_YET_VALID("device_chain_not_yet_valid"),
    /** The SPDM signature does not verify with the device leaf key. */
    EVIDENCE_SIGNATURE_INVALID("evidence_signature_invalid"),
    /** The leaf has no TCG DICE extension 2.23.133.5.4.1, or the evidence has no FWID field. */
    FWID_MISSING("fwid_missing"),
    /** The leaf certificate's FWID differs from the evidence's opaque FWID. */
    FWID_MISMATCH("fwid_mismatch"),
    /** The request nonce is not the verifier's nonce. */
    NONCE_MISMATCH("nonce_mismatch"),
    /** A RIM is not a well-formed signed SWID tag (XML, signature element, measurements). */
    RIM_MALFORMED("rim_malformed"),
    /** The RIM's XML signature or one of its references does not verify. */
    RIM_SIGNATURE_INVALID("rim_signature_invalid"),
    /** The RIM signing chain is not 4 certificates ending at the pinned CoRIM signing root. */
    RIM_CHAIN_INVALID("rim_chain_invalid"),
    /** A RIM signing certificate's notAfter is before the verifier's clock. */
    RIM_CHAIN_EXPIRED("rim_chain_expired"),
    /** A RIM signing certificate's notBefore is after the verifier's clock. */
    RIM_CHAIN_NOT_YET_VALID("rim_chain_not_yet_valid"),
    /** A RIM's colloquialVersion is not the driver / VBIOS version the evidence reports. */
    RIM_VERSION_MISMATCH("rim_version_mismatch"),
    /** A measurement index is active in both the driver and the VBIOS RIM. */
    RIM_INDEX_CONFLICT("rim_index_conflict"),
    /** At least one active golden measurement differs from the runtime value. */
    MEASUREMENT_MISMATCH("measurement_mismatch");

    private final String code;

    Reason(String code) {
      this.code = code;
    }

    public String code() {
      return code;
    }
  }

  private final Reason reason;
  private final String expected;
  private final String actual;

  GpuVerificationException(Reason reason, String detail, String expected, String actual) {
    super(reason.code() + ": " + detail + " (expected " + expected + ", actual " + actual + ")");
    this.reason = reason;
    this.expected = expected;
    this.actual = actual;
  }

  GpuVerificationException(
      Reason reason, String detail, String expected, String actual, Throwable cause) {
    this(reason, detail, expected, actual);
    initCause(cause);
  }

  /** Stable machine-readable code, e.g. {@code evidence_signature_invalid}. */
  public String code() {
    return reason.code();
  }

  public Reason reason() {
    return reason;
  }

  public String expected() {
    return expected;
  }

  public String actual() {
    return actual;
  }
}
