package org.cocoonjvm.attest.quote;

/**
 * ECDSA-256 quote signature data. v3 carries the QE report fields directly; v4/v5 wrap them in
 * certification data of type 6. Both parse to this one shape.
 *
 * @param quoteSignature 64 bytes raw r‖s over {@link Quote#signedBytes()}
 * @param attestationKey 64 bytes raw X‖Y of the P-256 attestation key
 * @param qeReport the quoting enclave's report; its {@code raw()} is what the PCK key signed
 * @param qeReportSignature 64 bytes raw r‖s by the PCK leaf key
 * @param qeAuthData hashed with the attestation key into the QE report data
 * @param certification how to find the PCK certificate, normally a PEM chain
 */
public record SignatureData(
    Blob quoteSignature,
    Blob attestationKey,
    EnclaveReportBody qeReport,
    Blob qeReportSignature,
    Blob qeAuthData,
    CertificationData certification) {}
