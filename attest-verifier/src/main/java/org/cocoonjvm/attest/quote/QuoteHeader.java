package org.cocoonjvm.attest.quote;

/**
 * The 48-byte quote header.
 *
 * @param version 3 (SGX), 4 (TDX) or 5 (TDX with body descriptor)
 * @param attestationKeyType always 2 (ECDSA P-256) once parsed
 * @param teeType {@link #TEE_SGX} or {@link #TEE_TDX}
 * @param reserved 4 bytes at offset 8 (v3: QE SVN and PCE SVN)
 * @param qeVendorId 16 bytes, Intel's id once parsed
 * @param userData 20 bytes; the first 16 are the QE id
 */
public record QuoteHeader(
    int version, int attestationKeyType, int teeType, Blob reserved, Blob qeVendorId,
    Blob userData) {
  public static final int SIZE = 48;
  public static final int TEE_SGX = 0x00;
  public static final int TEE_TDX = 0x81;
  public static final int KEY_TYPE_ECDSA_P256 = 2;

  public boolean isTdx() {
    return teeType == TEE_TDX;
  }
}
