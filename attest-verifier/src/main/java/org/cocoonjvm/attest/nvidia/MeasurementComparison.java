package org.cocoonjvm.attest.nvidia;

import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.RIM_INDEX_CONFLICT;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Runtime measurements against the golden values of a driver RIM and a VBIOS RIM (nvtrust
 * {@code verifier.py}): every active golden measurement must have a runtime block of the same size
 * whose value equals one of its alternatives. An index active in both RIMs is an error; index 35
 * is skipped when the evidence says NVDEC0 is disabled (it is then not measured).
 *
 * @param compared RIM indexes compared, ascending
 * @param mismatches compared indexes whose runtime value matched no alternative, ascending
 * @param skipped indexes active in a RIM but deliberately not compared (35 with NVDEC0 off)
 */
public record MeasurementComparison(
    List<Integer> compared, List<Mismatch> mismatches, List<Integer> skipped) {
  static final int NVDEC0_INDEX = 35;

  public MeasurementComparison {
    compared = List.copyOf(compared);
    mismatches = List.copyOf(mismatches);
    skipped = List.copyOf(skipped);
  }

  /**
   * One differing index.
   *
   * @param runtimeHex the runtime value, or null when the evidence has no block for the index
   */
  public record Mismatch(int index, String runtimeHex, List<String> goldenHex) {
    public Mismatch {
      goldenHex = List.copyOf(goldenHex);
    }
  }

  public boolean allMatch() {
    return mismatches.isEmpty();
  }

  /** Compares; versions are the caller's concern ({@link NvidiaGpuVerifier} checks them first). */
  public static MeasurementComparison compare(
      SpdmEvidence evidence, VerifiedRim driverRim, VerifiedRim vbiosRim)
      throws GpuVerificationException {
    Map<Integer, GoldenMeasurement> golden = new TreeMap<>();
    for (GoldenMeasurement g : driverRim.active()) golden.put(g.index(), g);
    for (GoldenMeasurement g : vbiosRim.active()) {
      if (golden.putIfAbsent(g.index(), g) != null) {
        throw new GpuVerificationException(RIM_INDEX_CONFLICT,
            "measurement index active in both the driver and the VBIOS RIM",
            "each index active in at most one RIM", "index " + g.index());
      }
    }
    boolean nvdec0Disabled = evidence.nvdec0Status().orElse(-1) == SpdmEvidence.NVDEC0_DISABLED;
    List<Integer> compared = new ArrayList<>();
    List<Mismatch> mismatches = new ArrayList<>();
    List<Integer> skipped = new ArrayList<>();
    for (GoldenMeasurement g : golden.values()) {
      if (g.index() == NVDEC0_INDEX && nvdec0Disabled) {
        skipped.add(g.index());
        continue;
      }
      compared.add(g.index());
      var runtime = evidence.blockForRimIndex(g.index());
      if (runtime.isEmpty() || !g.matches(runtime.get())) {
        mismatches.add(new Mismatch(g.index(),
            runtime.map(MeasurementBlock::valueHex).orElse(null), g.alternativesHex()));
      }
    }
    return new MeasurementComparison(compared, mismatches, skipped);
  }
}
