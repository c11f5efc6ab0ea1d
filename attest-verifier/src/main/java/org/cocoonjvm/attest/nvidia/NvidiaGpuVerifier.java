package org.cocoonjvm.attest.nvidia;

import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.MEASUREMENT_MISMATCH;
import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.RIM_VERSION_MISMATCH;

import java.time.Clock;
import java.util.Locale;
import java.util.Objects;

/**
 * The whole offline GPU check in one call: {@link GpuEvidenceVerifier}, then {@link RimVerifier} for
 * the driver and VBIOS RIMs, their versions against the evidence (driver exactly, VBIOS ignoring
 * hex case), then {@link MeasurementComparison}, which must find no mismatch.
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

  public GpuAttestation verify(
      byte[] evidence, byte[] deviceChainPem, byte[] expectedNonce, byte[] driverRimXml,
      byte[] vbiosRimXml) throws GpuVerificationException {
    VerifiedGpuEvidence verified = evidenceVerifier.verify(evidence, deviceChainPem, expectedNonce);
    VerifiedRim driver = rimVerifier.verify(driverRimXml);
    VerifiedRim vbios = rimVerifier.verify(vbiosRimXml);
    checkVersions(verified, driver, vbios);
    MeasurementComparison comparison =
        MeasurementComparison.compare(verified.evidence(), driver, vbios);
    if (!comparison.allMatch()) {
      throw new GpuVerificationException(MEASUREMENT_MISMATCH,
          comparison.mismatches().size() + " of " + comparison.compared().size()
              + " active golden measurements differ",
          "all match", "indexes " + comparison.mismatches().stream()
              .map(MeasurementComparison.Mismatch::index).toList());
    }
    return new GpuAttestation(verified, driver, vbios, comparison);
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
