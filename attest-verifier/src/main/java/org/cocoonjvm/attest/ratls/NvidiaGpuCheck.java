package org.cocoonjvm.attest.ratls;

import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.GPU_EVIDENCE_MISSING;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.GPU_EVIDENCE_REJECTED;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import org.cocoonjvm.attest.nvidia.GpuEvidenceVerifier;
import org.cocoonjvm.attest.nvidia.GpuNonce;
import org.cocoonjvm.attest.nvidia.GpuVerificationException;
import org.cocoonjvm.attest.nvidia.MeasurementComparison;
import org.cocoonjvm.attest.nvidia.NvidiaGpuVerifier;
import org.cocoonjvm.attest.nvidia.RimVerifier;
import org.cocoonjvm.attest.nvidia.VerifiedGpuEvidence;
import org.cocoonjvm.attest.nvidia.VerifiedRim;
import org.cocoonjvm.attest.policy.GpuPolicy;

/**
 * The GPU evidence check RA-TLS verifiers run under a {@link GpuPolicy}: the extension, when
 * present, must verify with {@link GpuEvidenceVerifier} against nonce
 * {@link GpuNonce#forTlsPublicKey}(certificate key), its driver version must be allowed, and, when
 * the policy names RIMs, the RIMs for its driver and VBIOS versions must verify and every active
 * golden measurement match. Absent evidence is refused when the policy requires it. Refusals carry
 * the {@link GpuVerificationException} as cause and its code in the message.
 */
public final class NvidiaGpuCheck implements RaTlsVerifier.GpuEvidenceCheck {
  private final GpuPolicy policy;
  private final GpuEvidenceVerifier evidence;
  private final RimVerifier rims;

  public NvidiaGpuCheck(GpuPolicy policy, GpuEvidenceVerifier evidence, RimVerifier rims) {
    this.policy = Objects.requireNonNull(policy, "policy");
    this.evidence = Objects.requireNonNull(evidence, "evidence");
    this.rims = Objects.requireNonNull(rims, "rims");
  }

  /** Both pinned NVIDIA roots. */
  public static NvidiaGpuCheck pinned(GpuPolicy policy, Clock clock) {
    return new NvidiaGpuCheck(policy, GpuEvidenceVerifier.create(clock), RimVerifier.create(clock));
  }

  @Override
  public Optional<GpuVerdict> check(byte[] rawTlsPublicKey, Optional<byte[]> extension) throws RaTlsException {
    if (extension.isEmpty()) {
      if (policy.required()) throw new RaTlsException(GPU_EVIDENCE_MISSING, "the policy requires GPU evidence and the certificate has none");
      return Optional.empty();
    }
    GpuEvidenceExtension ext;
    try {
      ext = GpuEvidenceExtension.decode(extension.get());
    } catch (IllegalArgumentException e) {
      throw new RaTlsException(GPU_EVIDENCE_REJECTED, "malformed extension: " + e.getMessage());
    }
    try {
      VerifiedGpuEvidence v = evidence.verify(ext.evidence(), ext.certificateChainPem(), GpuNonce.forTlsPublicKey(rawTlsPublicKey));
      if (!policy.driverVersions().allows(v.driverVersion())) {
        throw new RaTlsException(GPU_EVIDENCE_REJECTED, "driver version " + v.driverVersion() + " not in gpu.driver_versions "
            + policy.driverVersions());
      }
      Optional<Integer> compared = policy.rims().isEmpty() ? Optional.empty() : Optional.of(compare(v));
      return Optional.of(new GpuVerdict(v.driverVersion(), v.vbiosVersion(), v.certificateFwidHex(), compared));
    } catch (GpuVerificationException e) {
      throw new RaTlsException(GPU_EVIDENCE_REJECTED, e.getMessage(), e);
    }
  }

  /** @return the number of golden measurements compared, all of which matched */
  private int compare(VerifiedGpuEvidence v) throws GpuVerificationException, RaTlsException {
    // RIMs are verified per check, not at startup: their signing chains expire by the verifier's clock.
    List<VerifiedRim> verified = new ArrayList<>();
    for (byte[] xml : policy.rims()) verified.add(rims.verify(xml));
    VerifiedRim driver = pick(verified, v.driverVersion(), "driver");
    VerifiedRim vbios = pick(verified, v.vbiosVersion(), "VBIOS");
    NvidiaGpuVerifier.checkVersions(v, driver, vbios);
    MeasurementComparison c = MeasurementComparison.compare(v.evidence(), driver, vbios);
    if (!c.allMatch()) {
      throw new RaTlsException(GPU_EVIDENCE_REJECTED, "measurement_mismatch: " + c.mismatches().size() + " of "
          + c.compared().size() + " golden measurements differ, indexes "
          + c.mismatches().stream().map(MeasurementComparison.Mismatch::index).toList());
    }
    return c.compared().size();
  }

  private static VerifiedRim pick(List<VerifiedRim> rims, String version, String what) throws RaTlsException {
    for (VerifiedRim r : rims) {
      if (r.colloquialVersion().toUpperCase(Locale.ROOT).equals(version.toUpperCase(Locale.ROOT))) return r;
    }
    throw new RaTlsException(GPU_EVIDENCE_REJECTED, "rim_version_mismatch: no configured RIM is for " + what + " version "
        + version + " (have " + rims.stream().map(VerifiedRim::colloquialVersion).toList() + ")");
  }
}
