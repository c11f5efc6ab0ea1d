package org.cocoonjvm.attest.quote;

/**
 * Report body layouts. The wire values are the v5 body descriptor's {@code body_type}; v3 and v4
 * quotes carry no descriptor and imply SGX and TD 1.0.
 */
public enum BodyType {
  SGX_ENCLAVE(1, 384),
  TD_1_0(2, 584),
  /** TD 1.0 plus TEE_TCB_SVN_2 and MRSERVICETD. */
  TD_1_5(3, 648);

  private final int wire;
  private final int size;

  BodyType(int wire, int size) {
    this.wire = wire;
    this.size = size;
  }

  public int wire() {
    return wire;
  }

  /** Exact body size in bytes; a v5 descriptor must declare this size. */
  public int size() {
    return size;
  }

  static BodyType fromWire(int wire) {
    for (BodyType t : values()) if (t.wire == wire) return t;
    return null;
  }
}
