package org.cocoonjvm.attest.ratls;

import java.security.cert.CertificateException;
import java.util.Optional;
import org.cocoonjvm.attest.AttestationResult;

/**
 * A peer's RA-TLS certificate was refused. A {@link CertificateException}, so trust managers throw
 * it as is and the TLS handshake fails with it as the cause.
 */
public final class RaTlsException extends CertificateException {

  public enum Reason {
    /** The peer sent more or fewer than exactly one certificate. */
    NOT_DEPTH_0("not_depth_0"),
    /** Issuer differs from subject, or the signature does not verify with the certificate's own key. */
    NOT_SELF_SIGNED("not_self_signed"),
    /** A critical extension other than the quote, the claims, basicConstraints and keyUsage. */
    UNKNOWN_CRITICAL_EXTENSION("unknown_critical_extension"),
    /** The key is not Ed25519 (or, in the documented ECDSA fallback, not P-256). */
    WRONG_KEY_TYPE("wrong_key_type"),
    /** The quote or claims extension is absent or not critical. */
    MISSING_EXTENSION("missing_extension"),
    /** The claims extension is not the certificate's own raw public key. */
    CLAIMS_MISMATCH("claims_mismatch"),
    CERT_EXPIRED("cert_expired"),
    CERT_NOT_YET_VALID("cert_not_yet_valid"),
    /** report_data in the quote is not SHA-512 of the certificate key. */
    REPORT_DATA_MISMATCH("report_data_mismatch"),
    /** The verifier could not get collateral for the quote. */
    COLLATERAL_UNAVAILABLE("collateral_unavailable"),
    /** The quote did not verify or the policy refused it; see {@link #attestation()}. */
    ATTESTATION_REJECTED("attestation_rejected"),
    /** The GPU evidence check refused the certificate's GPU evidence extension. */
    GPU_EVIDENCE_REJECTED("gpu_evidence_rejected");

    private final String code;

    Reason(String code) {
      this.code = code;
    }

    public String code() {
      return code;
    }
  }

  private final Reason reason;
  private final transient AttestationResult attestation;

  public RaTlsException(Reason reason, String detail) {
    this(reason, detail, null);
  }

  RaTlsException(Reason reason, String detail, AttestationResult attestation) {
    super(reason.code() + ": " + detail);
    this.reason = reason;
    this.attestation = attestation;
  }

  public Reason reason() {
    return reason;
  }

  /** The attestation outcome for {@link Reason#ATTESTATION_REJECTED}. */
  public Optional<AttestationResult> attestation() {
    return Optional.ofNullable(attestation);
  }
}
