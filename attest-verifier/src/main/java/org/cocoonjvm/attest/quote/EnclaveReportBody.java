package org.cocoonjvm.attest.quote;

/**
 * SGX enclave report, 384 bytes: the body of an SGX quote and the QE report inside every quote.
 * Reserved ranges are not exposed; they are still covered by the signatures over {@link #raw()}.
 *
 * @param miscSelect little-endian u32, widened so it reads unsigned
 * @param raw the exact 384 bytes, which the QE report signature covers
 */
public record EnclaveReportBody(
    Blob cpuSvn,
    long miscSelect,
    Blob attributes,
    Blob mrEnclave,
    Blob mrSigner,
    int isvProdId,
    int isvSvn,
    Blob reportData,
    Blob raw)
    implements ReportBody {
  public static final int SIZE = 384;

  @Override
  public BodyType type() {
    return BodyType.SGX_ENCLAVE;
  }

  public String reportDataHex() {
    return reportData.hex();
  }
}
