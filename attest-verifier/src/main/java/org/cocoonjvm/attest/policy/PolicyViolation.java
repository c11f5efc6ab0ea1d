package org.cocoonjvm.attest.policy;

/**
 * One reason a cryptographically verified quote is still refused. {@link Reason#code()} is stable
 * (metrics, logs, JSON); {@code detail} names the values for humans.
 */
public record PolicyViolation(Reason reason, String detail) {

  public enum Reason {
    /** The converged TCB status is not in {@code accepted_statuses}. */
    TCB_STATUS_NOT_ACCEPTED("tcb_status_not_accepted"),
    /** A SW-hardening status carries an advisory that is not in {@code allowed_advisories}. */
    ADVISORY_NOT_ALLOWED("advisory_not_allowed"),
    /** td_attributes.DEBUG (or SGX ATTRIBUTES.DEBUG) is set. */
    DEBUG_NOT_ALLOWED("debug_not_allowed"),
    /** A reserved td_attributes bit is set. */
    RESERVED_TD_ATTRIBUTES("reserved_td_attributes"),
    /** td_attributes.SEPT_VE_DISABLE (bit 28) is clear. */
    SEPT_VE_DISABLE_REQUIRED("sept_ve_disable_required"),
    /** TD 1.5 mr_servicetd is not all zero. */
    MR_SERVICETD_NOT_ALLOWED("mr_servicetd_not_allowed"),
    /** A TD allow-list is set but the quote is SGX. */
    NOT_TDX("not_tdx"),
    MRTD_NOT_ALLOWED("mrtd_not_allowed"),
    RTMR_NOT_ALLOWED("rtmr_not_allowed"),
    MR_CONFIG_ID_NOT_ALLOWED("mr_config_id_not_allowed"),
    IMAGE_HASH_NOT_ALLOWED("image_hash_not_allowed"),
    /** A worker's {@code name@hash} model is not allow-listed. */
    MODEL_NOT_ALLOWED("model_not_allowed"),
    /** The chain's root key id (SHA-384 of 04‖X‖Y) is not allow-listed. */
    ROOT_KEY_NOT_ALLOWED("root_key_not_allowed"),
    /** The quote comes from the development TEE and the policy does not say {@code allow_dev_tee}. */
    DEV_TEE_NOT_ALLOWED("dev_tee_not_allowed"),
    /** report_data is not the expected 64 bytes (RA-TLS: SHA-512 of the certificate key). */
    REPORT_DATA_MISMATCH("report_data_mismatch");

    private final String code;

    Reason(String code) {
      this.code = code;
    }

    public String code() {
      return code;
    }
  }

  public String code() {
    return reason.code();
  }

  @Override
  public String toString() {
    return reason.code() + ": " + detail;
  }
}
