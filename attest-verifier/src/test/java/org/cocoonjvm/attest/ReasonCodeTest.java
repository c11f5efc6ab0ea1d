package org.cocoonjvm.attest;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import org.cocoonjvm.attest.dcap.CollateralFetchException;
import org.cocoonjvm.attest.dcap.VerificationException;
import org.cocoonjvm.attest.nvidia.GpuVerificationException;
import org.cocoonjvm.attest.policy.PolicyViolation;
import org.cocoonjvm.attest.quote.QuoteFormatException;
import org.cocoonjvm.attest.ratls.RaTlsException;
import org.junit.jupiter.api.Test;

/**
 * The reason codes are the module's published contract (metrics, logs, JSON, the CLI). Most are
 * derived from constant names, so this pins them: a rename must fail here, not in a dashboard.
 */
class ReasonCodeTest {

  @Test
  void publishedCodesAreStable() {
    assertCodes(
        VerificationException.Reason.values(),
        "pck_chain_malformed", "root_not_pinned", "chain_signature_invalid", "chain_expired",
        "chain_not_yet_valid", "qe_report_signature_invalid", "qe_report_binding_mismatch",
        "quote_signature_invalid", "collateral_malformed", "collateral_chain_invalid",
        "collateral_expired", "pck_crl_missing", "pck_revoked", "certificate_revoked",
        "tcb_info_signature_invalid", "qe_identity_signature_invalid", "fmspc_mismatch",
        "pceid_mismatch", "qe_identity_mismatch", "qe_isvsvn_not_supported", "tcb_not_supported",
        "tdx_module_mismatch");
    assertCodes(
        CollateralFetchException.Reason.values(),
        "collateral_not_found", "collateral_http_status", "collateral_unavailable",
        "collateral_response_malformed");
    assertCodes(
        QuoteFormatException.Reason.values(),
        "truncated", "unsupported_version", "unsupported_key_type", "unsupported_tee_type",
        "unsupported_body_type", "unsupported_cert_type", "bad_length", "bad_qe_vendor");
    assertCodes(
        GpuVerificationException.Reason.values(),
        "evidence_malformed", "unsupported_architecture", "device_chain_malformed",
        "device_root_not_pinned", "device_chain_signature_invalid", "device_chain_expired",
        "device_chain_not_yet_valid", "evidence_signature_invalid", "fwid_missing",
        "fwid_mismatch", "nonce_mismatch", "rim_malformed", "rim_signature_invalid",
        "rim_chain_invalid", "rim_chain_expired", "rim_chain_not_yet_valid",
        "rim_version_mismatch", "rim_index_conflict", "measurement_mismatch");
    assertCodes(
        RaTlsException.Reason.values(),
        "not_depth_0", "not_self_signed", "unknown_critical_extension", "wrong_key_type",
        "missing_extension", "claims_mismatch", "cert_expired", "cert_not_yet_valid",
        "cert_validity_too_long", "report_data_mismatch", "collateral_unavailable", "attestation_rejected",
        "gpu_evidence_rejected", "gpu_evidence_missing", "config_rejected");
    assertCodes(
        PolicyViolation.Reason.values(),
        "tcb_evaluation_data_number_too_low", "tcb_status_not_accepted", "advisory_not_allowed", "debug_not_allowed",
        "reserved_td_attributes", "sept_ve_disable_required", "mr_servicetd_not_allowed",
        "tee_not_allowed", "mrtd_not_allowed", "rtmr_not_allowed", "mr_config_id_not_allowed",
        "xfam_not_allowed", "mr_seam_not_allowed", "image_hash_not_allowed", "mrenclave_not_allowed",
        "mrsigner_not_allowed", "model_not_allowed", "root_key_not_allowed",
        "dev_tee_not_allowed", "report_data_mismatch");
  }

  private static void assertCodes(ReasonCode[] reasons, String... codes) {
    assertThat(Arrays.stream(reasons).map(ReasonCode::code)).containsExactly(codes);
  }
}
