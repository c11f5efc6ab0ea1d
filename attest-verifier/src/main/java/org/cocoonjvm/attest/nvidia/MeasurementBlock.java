package org.cocoonjvm.attest.nvidia;

/**
 * One DMTF measurement block of an SPDM MEASUREMENTS response.
 *
 * @param index SPDM block index (1-based); the RIM index is {@code index - 1}
 * @param valueType DMTF measurement value type (bit 7: raw bit stream vs digest)
 * @param valueHex the measurement value, lower-case hex (48-byte SHA-384 digests on Hopper)
 */
public record MeasurementBlock(int index, int valueType, String valueHex) {
  /** The index the RIMs use for this block. */
  public int rimIndex() {
    return index - 1;
  }

  public int valueSize() {
    return valueHex.length() / 2;
  }
}
