package org.cocoonjvm.attest.policy;

import org.cocoonjvm.attest.ReasonCode;

/**
 * One reason a cryptographically verified quote is still refused. {@link Reason#code()} is stable
 * (metrics, logs, JSON); {@code detail} names the values for humans.
 */
public record PolicyViolation(Reason reason, String detail) {

  public enum Reason implements ReasonCode {
    /** The TCB Info or QE Identity has a tcbEvaluationDataNumber below {@code min_tcb_evaluation_data_number}. */
    TCB_EVALUATION_DATA_NUMBER_TOO_LOW,
    /** The converged TCB status is not in {@code accepted_statuses}. */
    TCB_STATUS_NOT_ACCEPTED,
    /** A SW-hardening status carries an advisory that is not in {@code allowed_advisories}. */
    ADVISORY_NOT_ALLOWED,
    /** td_attributes.DEBUG (or SGX ATTRIBUTES.DEBUG) is set. */
    DEBUG_NOT_ALLOWED,
    /** A reserved td_attributes bit is set. */
    RESERVED_TD_ATTRIBUTES,
    /** td_attributes.SEPT_VE_DISABLE (bit 28) is clear. */
    SEPT_VE_DISABLE_REQUIRED,
    /** TD 1.5 mr_servicetd is not all zero. */
    MR_SERVICETD_NOT_ALLOWED,
    /** The quote's type (TDX or SGX) is not in {@code allowed_tee}. */
    TEE_NOT_ALLOWED,
    MRTD_NOT_ALLOWED,
    RTMR_NOT_ALLOWED,
    MR_CONFIG_ID_NOT_ALLOWED,
    XFAM_NOT_ALLOWED,
    MR_SEAM_NOT_ALLOWED,
    IMAGE_HASH_NOT_ALLOWED,
    MRENCLAVE_NOT_ALLOWED,
    MRSIGNER_NOT_ALLOWED,
    /** A worker's {@code name@hash} model is not allow-listed. */
    MODEL_NOT_ALLOWED,
    /** The chain's root key id (SHA-384 of 04‖X‖Y) is not allow-listed. */
    ROOT_KEY_NOT_ALLOWED,
    /** The quote comes from the development TEE and the policy does not say {@code allow_dev_tee}. */
    DEV_TEE_NOT_ALLOWED,
    /** report_data is not the expected 64 bytes (RA-TLS: SHA-512 of the certificate key). */
    REPORT_DATA_MISMATCH;
  }

  public String code() {
    return reason.code();
  }

  @Override
  public String toString() {
    return reason.code() + ": " + detail;
  }
}
