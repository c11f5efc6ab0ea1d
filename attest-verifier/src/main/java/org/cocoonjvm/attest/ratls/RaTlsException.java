package org.cocoonjvm.attest.ratls;

import java.security.cert.CertificateException;
import java.util.Optional;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.ReasonCode;

/**
 * A peer's RA-TLS certificate was refused. A {@link CertificateException}, so trust managers throw
 * it as is and the TLS handshake fails with it as the cause.
 */
public final class RaTlsException extends CertificateException {

  public enum Reason implements ReasonCode {
    /** The peer sent more or fewer than exactly one certificate. */
    NOT_DEPTH_0,
    /** Issuer differs from subject, or the signature does not verify with the certificate's own key. */
    NOT_SELF_SIGNED,
    /** A critical extension other than the quote, the claims, basicConstraints and keyUsage. */
    UNKNOWN_CRITICAL_EXTENSION,
    /** The key is not Ed25519 (or, in the documented ECDSA fallback, not P-256). */
    WRONG_KEY_TYPE,
    /** The quote or claims extension is absent or not critical. */
    MISSING_EXTENSION,
    /** The claims extension is not the certificate's own raw public key. */
    CLAIMS_MISMATCH,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    /** notAfter − notBefore exceeds {@link RaTlsVerifier#MAX_CERT_VALIDITY}. */
    CERT_VALIDITY_TOO_LONG,
    /** report_data in the quote is not SHA-512 of the certificate key. */
    REPORT_DATA_MISMATCH,
    /** The verifier could not get collateral for the quote. */
    COLLATERAL_UNAVAILABLE,
    /** The quote did not verify or the policy refused it; see {@link #attestation()}. */
    ATTESTATION_REJECTED,
    /** The GPU evidence extension is malformed, does not verify, or fails the policy's GPU rules. */
    GPU_EVIDENCE_REJECTED,
    /** The policy requires GPU evidence and the certificate has no GPU evidence extension. */
    GPU_EVIDENCE_MISSING,
    /** The configuration extension is malformed, or its claims fail the policy's {@code config} ({@link NodeConfig}). */
    CONFIG_REJECTED;
  }

  private final Reason reason;
  private final String detail;
  private final transient AttestationResult attestation;

  public RaTlsException(Reason reason, String detail) {
    this(reason, detail, (AttestationResult) null);
  }

  /** @param cause the GPU verifier's typed failure, for {@link Reason#GPU_EVIDENCE_REJECTED} */
  RaTlsException(Reason reason, String detail, Exception cause) {
    this(reason, detail, (AttestationResult) null);
    initCause(cause);
  }

  RaTlsException(Reason reason, String detail, AttestationResult attestation) {
    super(reason.code() + ": " + detail);
    this.reason = reason;
    this.detail = detail;
    this.attestation = attestation;
  }

  public Reason reason() {
    return reason;
  }

  /** The message without its leading reason code, for whoever shows the code apart. */
  public String detail() {
    return detail;
  }

  /** The attestation outcome for {@link Reason#ATTESTATION_REJECTED}. */
  public Optional<AttestationResult> attestation() {
    return Optional.ofNullable(attestation);
  }
}
