package org.cocoonjvm.attest.policy;

/** Where a quote's trust comes from, by the root its PCK chain ends in. */
public enum TeeKind {
  /** Intel TDX, PCK chain under the pinned Intel SGX Root CA. */
  INTEL_TDX("TDX"),
  /** Intel SGX, PCK chain under the pinned Intel SGX Root CA. */
  INTEL_SGX("SGX"),
  /**
   * A quote made by {@code DevTee} in software, PCK chain under a development root: same format
   * and same verifier code, but nothing about it is backed by hardware.
   */
  DEV("dev (not hardware-backed)");

  private final String label;

  TeeKind(String label) {
    this.label = label;
  }

  /** The text results and JSON show, e.g. {@code dev (not hardware-backed)}. */
  public String label() {
    return label;
  }

  /** Whether the quote's trust comes from a CPU vendor's hardware: every kind but {@link #DEV}. */
  public boolean hardwareBacked() {
    return this != DEV;
  }
}
