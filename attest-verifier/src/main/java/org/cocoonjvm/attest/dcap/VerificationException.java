package org.cocoonjvm.attest.dcap;

/**
 * A quote failed a verification step.
 *
 * <p>{@link #code()} is stable and meant for metrics, logs and error tables; {@link #expected()}
 * and {@link #actual()} carry the values that disagreed (hex, a time, a subject), and the message
 * is for humans.
 */
public final class VerificationException extends Exception {

  /** Why verification stopped. The string codes are part of the module's contract. */
  public enum Reason {
    /** Certification data is not a PEM chain of exactly leaf, intermediate CA, root CA. */
    PCK_CHAIN_MALFORMED("pck_chain_malformed"),
    /** The chain's root key is not the pinned Intel SGX Root CA key. */
    ROOT_NOT_PINNED("root_not_pinned"),
    /** A certificate's signature does not verify with its issuer's key. */
    CHAIN_SIGNATURE_INVALID("chain_signature_invalid"),
    /** A certificate's notAfter is before the verifier's clock. */
    CHAIN_EXPIRED("chain_expired"),
    /** A certificate's notBefore is after the verifier's clock. */
    CHAIN_NOT_YET_VALID("chain_not_yet_valid"),
    /** The QE report signature does not verify with the PCK leaf key. */
    QE_REPORT_SIGNATURE_INVALID("qe_report_signature_invalid"),
    /** QE REPORTDATA is not SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes. */
    QE_REPORT_BINDING_MISMATCH("qe_report_binding_mismatch"),
    /** The quote signature does not verify with the attestation key. */
    QUOTE_SIGNATURE_INVALID("quote_signature_invalid");

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

  VerificationException(Reason reason, String detail, String expected, String actual) {
    super(reason.code() + ": " + detail + " (expected " + expected + ", actual " + actual + ")");
    this.reason = reason;
    this.expected = expected;
    this.actual = actual;
  }

  VerificationException(Reason reason, String detail, String expected, String actual, Throwable cause) {
    this(reason, detail, expected, actual);
    initCause(cause);
  }

  /** Stable machine-readable code, e.g. {@code quote_signature_invalid}. */
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
