package org.cocoonjvm.attest.nvidia;

/**
 * A GPU whose evidence (chain, signature, FWID, nonce) and both RIMs (signature, chain, version)
 * verified, with the measurement comparison. {@link NvidiaGpuVerifier#verify} returns one only when
 * every measurement matched; {@link NvidiaGpuVerifier#appraise} also when some did not.
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

  public boolean allMeasurementsMatch() {
    return measurements.allMatch();
  }

  public String fwidHex() {
    return evidence.certificateFwidHex();
  }
}
