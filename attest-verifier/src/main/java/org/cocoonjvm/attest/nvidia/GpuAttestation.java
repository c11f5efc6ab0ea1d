package org.cocoonjvm.attest.nvidia;

/**
 * A GPU that passed every check: evidence (chain, signature, FWID, nonce), both RIMs (signature,
 * chain, version) and every active golden measurement.
 */
public record GpuAttestation(
    VerifiedGpuEvidence evidence, VerifiedRim driverRim, VerifiedRim vbiosRim,
    MeasurementComparison measurements) {

  public String driverVersion() {
    return evidence.driverVersion();
  }

  public String vbiosVersion() {
    return evidence.vbiosVersion();
  }

  public String fwidHex() {
    return evidence.certificateFwidHex();
  }
}
