package org.cocoonjvm.attest.dcap;

import org.cocoonjvm.attest.MismatchException;
import org.cocoonjvm.attest.ReasonCode;

/**
 * A quote failed a verification step.
 *
 * <p>{@link #code()} is stable and meant for metrics, logs and error tables; {@link #expected()}
 * and {@link #actual()} carry the values that disagreed (hex, a time, a subject), and the message
 * is for humans.
 */
public final class VerificationException extends MismatchException {

  /** Why verification stopped. The string codes are part of the module's contract. */
  public enum Reason implements ReasonCode {
    /** Certification data is not a PEM chain of exactly leaf, intermediate CA, root CA. */
    PCK_CHAIN_MALFORMED,
    /** The chain's root key is not the pinned Intel SGX Root CA key. */
    ROOT_NOT_PINNED,
    /** A certificate's signature does not verify with its issuer's key. */
    CHAIN_SIGNATURE_INVALID,
    /** A certificate's notAfter is before the verifier's clock. */
    CHAIN_EXPIRED,
    /** A certificate's notBefore is after the verifier's clock. */
    CHAIN_NOT_YET_VALID,
    /** The QE report signature does not verify with the PCK leaf key. */
    QE_REPORT_SIGNATURE_INVALID,
    /** QE REPORTDATA is not SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes. */
    QE_REPORT_BINDING_MISMATCH,
    /** The quote signature does not verify with the attestation key. */
    QUOTE_SIGNATURE_INVALID,
    /** Collateral JSON, PEM or CRL cannot be read, or has the wrong id/version. */
    COLLATERAL_MALFORMED,
    /** A CRL is not signed by its issuer, or a collateral signing chain does not reach the pinned root. */
    COLLATERAL_CHAIN_INVALID,
    /** A CRL, TCB Info, QE Identity or collateral signing certificate is not current at the clock. */
    COLLATERAL_EXPIRED,
    /** Strict mode and the collateral carries no PCK CRL. */
    PCK_CRL_MISSING,
    /** The PCK leaf is on the PCK CRL (Intel's PCK_REVOKED). */
    PCK_REVOKED,
    /** The PCK CA or a collateral signing certificate is on the root CA CRL. */
    CERTIFICATE_REVOKED,
    /** The TCB Info signature does not verify over the raw JSON text. */
    TCB_INFO_SIGNATURE_INVALID,
    /** The QE Identity signature does not verify over the raw JSON text. */
    QE_IDENTITY_SIGNATURE_INVALID,
    /** TCB Info FMSPC differs from the PCK certificate's. */
    FMSPC_MISMATCH,
    /** TCB Info PCE-ID differs from the PCK certificate's. */
    PCEID_MISMATCH,
    /** The QE report does not match the QE Identity (MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES). */
    QE_IDENTITY_MISMATCH,
    /** The QE's ISVSVN is below every QE Identity level. */
    QE_ISVSVN_NOT_SUPPORTED,
    /** No TCB level (platform or TDX module) matches the PCK components and TEE_TCB_SVN. */
    TCB_NOT_SUPPORTED,
    /** The TDX module identity is missing or its MRSIGNER / attributes differ. */
    TDX_MODULE_MISMATCH;
  }

  VerificationException(Reason reason, String detail, String expected, String actual) {
    this(reason, detail, expected, actual, null);
  }

  VerificationException(Reason reason, String detail, String expected, String actual, Throwable cause) {
    super(reason, detail, expected, actual, cause);
  }

  public Reason reason() {
    return (Reason) reasonCode();
  }
}
