package org.cocoonjvm.attest.tee;

/**
 * Produces a TDX quote over 64 bytes of caller data (REPORTDATA). Implementations: {@link
 * ConfigFsTsmQuoteSource} on a TDX guest, {@link DevTee} in software for development.
 */
public interface QuoteSource {
  int REPORT_DATA_SIZE = 64;

  /**
   * @param reportData exactly 64 bytes; RA-TLS puts SHA-512 of the certificate key here
   * @return the raw quote (reference §1)
   */
  byte[] quote(byte[] reportData) throws QuoteSourceException;

  /** Short description for logs and {@code /v1/attestation}, e.g. {@code configfs-tsm tdx_guest}. */
  String describe();
}
