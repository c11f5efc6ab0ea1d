package org.cocoonjvm.attest.nvidia;

import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.MEASUREMENT_MISMATCH;
import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.RIM_VERSION_MISMATCH;

import java.time.Clock;
import java.util.Locale;
import java.util.Objects;

/**
 * The whole offline GPU check: {@link GpuEvidenceVerifier}, then {@link RimVerifier} for the driver
 * and VBIOS RIMs, their versions against the evidence (driver exactly, VBIOS ignoring hex case),
 * then {@link MeasurementComparison}, which must find no mismatch.
 */
public final class NvidiaGpuVerifier {
  private final GpuEvidenceVerifier evidenceVerifier;
  private final RimVerifier rimVerifier;

  private NvidiaGpuVerifier(GpuEvidenceVerifier evidenceVerifier, RimVerifier rimVerifier) {
    this.evidenceVerifier = evidenceVerifier;
    this.rimVerifier = rimVerifier;
  }

  public static NvidiaGpuVerifier create(GpuEvidenceVerifier evidence, RimVerifier rims) {
    return new NvidiaGpuVerifier(Objects.requireNonNull(evidence), Objects.requireNonNull(rims));
  }

  /** Both pinned NVIDIA roots, one clock. */
  public static NvidiaGpuVerifier create(Clock clock) {
    return create(GpuEvidenceVerifier.create(clock), RimVerifier.create(clock));
  }

  /**
   * Evidence, RIMs, versions and measurements; returns only an attestation whose every active
   * golden measurement matched.
   */
  public GpuAttestation verify(
      byte[] evidence, byte[] deviceChainPem, byte[] expectedNonce, byte[] driverRimXml,
      byte[] vbiosRimXml) throws GpuVerificationException {
    GpuAttestation a = appraise(
        evidenceVerifier.verify(evidence, deviceChainPem, expectedNonce), driverRimXml, vbiosRimXml);
    MeasurementComparison comparison = a.measurements();
    if (!comparison.allMatch()) {
      throw new GpuVerificationException(MEASUREMENT_MISMATCH,
          comparison.mismatches().size() + " of " + comparison.compared().size()
              + " active golden measurements differ",
          "all match", "indexes " + comparison.mismatches().stream()
              .map(MeasurementComparison.Mismatch::index).toList());
    }
    return a;
  }

  /**
   * Verifies two RIMs given in either order (the one whose colloquialVersion is the evidence's
   * driver version is the driver RIM), checks both versions and compares measurements. Mismatches
   * are reported in the result, not thrown: for tools that show every differing index. Accept only
   * when {@link GpuAttestation#allMeasurementsMatch()}.
   */
  public GpuAttestation appraise(VerifiedGpuEvidence evidence, byte[] rimXml, byte[] otherRimXml)
      throws GpuVerificationException {
    VerifiedRim first = rimVerifier.verify(rimXml);
    VerifiedRim second = rimVerifier.verify(otherRimXml);
    boolean firstIsDriver = first.colloquialVersion().equals(evidence.driverVersion());
    VerifiedRim driver = firstIsDriver ? first : second;
    VerifiedRim vbios = firstIsDriver ? second : first;
    checkVersions(evidence, driver, vbios);
    return new GpuAttestation(
        evidence, driver, vbios, MeasurementComparison.compare(evidence.evidence(), driver, vbios));
  }

  public GpuEvidenceVerifier evidenceVerifier() {
    return evidenceVerifier;
  }

  /** Driver RIM version must equal the evidence's driver version; VBIOS compares case-insensitively. */
  public static void checkVersions(VerifiedGpuEvidence evidence, VerifiedRim driver, VerifiedRim vbios)
      throws GpuVerificationException {
    if (!driver.colloquialVersion().equals(evidence.driverVersion())) {
      throw new GpuVerificationException(RIM_VERSION_MISMATCH,
          "driver RIM is for another driver version", evidence.driverVersion(),
          driver.colloquialVersion());
    }
    if (!vbios.colloquialVersion().toUpperCase(Locale.ROOT)
        .equals(evidence.vbiosVersion().toUpperCase(Locale.ROOT))) {
      throw new GpuVerificationException(RIM_VERSION_MISMATCH,
          "VBIOS RIM is for another VBIOS version", evidence.vbiosVersion(),
          vbios.colloquialVersion());
    }
  }
}
