package org.cocoonjvm.attest.quote;

/**
 * A structurally valid DCAP quote. Nothing here is verified yet: signatures, certificates and TCB
 * status are the verifier's job. Build one with {@link QuoteParser#parse(byte[])}.
 *
 * @param signedBytes header and body exactly as signed by the attestation key
 * @param trailingBytes bytes after the declared signature data; real quotes carry padding there
 */
public record Quote(
    QuoteHeader header,
    ReportBody body,
    SignatureData signature,
    Blob signedBytes,
    int trailingBytes) {

  public int version() {
    return header.version();
  }

  public boolean isTdx() {
    return header.isTdx();
  }

  /** The TD report body; the caller has checked {@link #isTdx()}. */
  public TdReportBody td() {
    if (body instanceof TdReportBody td) return td;
    throw new IllegalStateException("not a TDX quote (tee_type " + header.teeType() + ")");
  }

  /** The enclave report body of an SGX quote. */
  public EnclaveReportBody enclave() {
    if (body instanceof EnclaveReportBody e) return e;
    throw new IllegalStateException("not an SGX quote (tee_type " + header.teeType() + ")");
  }

  public String reportDataHex() {
    return body.reportData().hex();
  }
}
