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
    QUOTE_SIGNATURE_INVALID("quote_signature_invalid"),
    /** Collateral JSON, PEM or CRL cannot be read, or has the wrong id/version. */
    COLLATERAL_MALFORMED("collateral_malformed"),
    /** A CRL is not signed by its issuer, or a collateral signing chain does not reach the pinned root. */
    COLLATERAL_CHAIN_INVALID("collateral_chain_invalid"),
    /** A CRL, TCB Info, QE Identity or collateral signing certificate is not current at the clock. */
    COLLATERAL_EXPIRED("collateral_expired"),
    /** Strict mode and the collateral carries no PCK CRL. */
    PCK_CRL_MISSING("pck_crl_missing"),
    /** The PCK leaf is on the PCK CRL (Intel's PCK_REVOKED). */
    PCK_REVOKED("pck_revoked"),
    /** The PCK CA or a collateral signing certificate is on the root CA CRL. */
    CERTIFICATE_REVOKED("certificate_revoked"),
    /** The TCB Info signature does not verify over the raw JSON text. */
    TCB_INFO_SIGNATURE_INVALID("tcb_info_signature_invalid"),
    /** The QE Identity signature does not verify over the raw JSON text. */
    QE_IDENTITY_SIGNATURE_INVALID("qe_identity_signature_invalid"),
    /** TCB Info FMSPC differs from the PCK certificate's. */
    FMSPC_MISMATCH("fmspc_mismatch"),
    /** TCB Info PCE-ID differs from the PCK certificate's. */
    PCEID_MISMATCH("pceid_mismatch"),
    /** The QE report does not match the QE Identity (MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES). */
    QE_IDENTITY_MISMATCH("qe_identity_mismatch"),
    /** The QE's ISVSVN is below every QE Identity level. */
    QE_ISVSVN_NOT_SUPPORTED("qe_isvsvn_not_supported"),
    /** No TCB level (platform or TDX module) matches the PCK components and TEE_TCB_SVN. */
    TCB_NOT_SUPPORTED("tcb_not_supported"),
    /** The TDX module identity is missing or its MRSIGNER / attributes differ. */
    TDX_MODULE_MISMATCH("tdx_module_mismatch");

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
