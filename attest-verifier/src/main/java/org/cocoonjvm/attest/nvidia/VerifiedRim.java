package org.cocoonjvm.attest.nvidia;

import java.security.cert.X509Certificate;
import java.util.List;

/**
 * A RIM whose XML signature and signing chain verified.
 *
 * @param colloquialVersion {@code Meta/@colloquialVersion}: a driver version (545.00) or a VBIOS
 *     version (96.00.5E.00.01)
 * @param tagId {@code SoftwareIdentity/@tagId}
 * @param measurements every Measurement resource, active or not, in document order
 * @param signer the RIM signing leaf (HCC RIM L4 Signer)
 */
public record VerifiedRim(
    String colloquialVersion, String tagId, List<GoldenMeasurement> measurements,
    X509Certificate signer) {
  public VerifiedRim {
    measurements = List.copyOf(measurements);
  }

  public List<GoldenMeasurement> active() {
    return measurements.stream().filter(GoldenMeasurement::active).toList();
  }
}
