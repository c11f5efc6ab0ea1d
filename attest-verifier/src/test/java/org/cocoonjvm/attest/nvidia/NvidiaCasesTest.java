package org.cocoonjvm.attest.nvidia;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.attest.nvidia.GpuEvidenceVerifierTest.assertCode;
import static org.cocoonjvm.attest.nvidia.NvidiaFixtures.HEX;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.cocoonjvm.attest.quote.NeedsFixtures;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every case of the {@code nvidia} section of expected_results.json, by name: a case added there
 * without an entry here fails. Cases without a fixed time run at 2025-11-01 (device chains are
 * valid 2022-03-01 → 9999).
 */
@NeedsFixtures
class NvidiaCasesTest {
  static final Instant NOW = Instant.parse("2025-11-01T00:00:00Z");

  static List<String> cases() {
    String json = NvidiaFixtures.text("expected_results.json");
    String nvidia = json.substring(json.indexOf("\"nvidia\""));
    List<String> names = new ArrayList<>();
    Matcher m = Pattern.compile("\"name\"\\s*:\\s*\"([^\"]+)\"").matcher(nvidia);
    while (m.find()) names.add(m.group(1));
    return names;
  }

  static final Map<String, Executable> EXPECTED = Map.of(
      "nv-hopper-legacy-2023-full", () -> {
        GpuAttestation a = NvidiaGpuVerifier.create(NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW)).verify(
            NvidiaFixtures.hexEvidence("nvtrust/legacy-2023/attestationReport.txt"),
            NvidiaFixtures.bytes("nvtrust/legacy-2023/gpuAkCertChain.txt"),
            HEX.parseHex(NvidiaFixtures.LEGACY_NONCE),
            NvidiaFixtures.bytes(RimAndMeasurementTest.LEGACY_DRIVER_RIM),
            NvidiaFixtures.bytes(RimAndMeasurementTest.LEGACY_VBIOS_RIM));
        assertThat(a.driverVersion()).isEqualTo("545.00");
        assertThat(a.vbiosVersion()).isEqualTo("96.00.5E.00.01");
        assertThat(a.measurements().compared().size() + a.measurements().skipped().size()).isEqualTo(33);
      },
      "nv-hopper-2025-sample", () -> {
        VerifiedGpuEvidence v = GpuEvidenceVerifierTest.sample(NvidiaFixtures.hexEvidence(GpuEvidenceVerifierTest.SAMPLE));
        assertThat(v.certificateFwidHex()).startsWith("f5c384ae").endsWith("62b1f75d");
        VerifiedRim driver = RimAndMeasurementTest.rim("nvtrust/rims/Driver_RIM_test_no_gpu.swidtag", NvidiaFixtures.LEGACY_NOW);
        VerifiedRim vbios = RimAndMeasurementTest.rim(
            "nvtrust/rims/1010_0200_882_96005E0001_test_no_gpu.swidtag", NvidiaFixtures.LEGACY_NOW);
        assertThat(MeasurementComparison.compare(v.evidence(), driver, vbios).mismatches()).hasSize(20);
      },
      "nv-hopper-coco-report1", () -> GpuEvidenceVerifierTest.verify(
          NvidiaFixtures.hexEvidence("trustee/nvidia/hopper_coco_report1.txt"),
          "trustee/nvidia/hopper_coco_certs1.txt", NvidiaFixtures.COCO_NONCE, NOW),
      "nv-ppcie-8gpu", () -> {
        var gpus = NvidiaFixtures.ppcie("nvtrust/ppcie_gpu_evidence.json");
        assertThat(gpus).hasSize(8);
        for (var gpu : gpus) {
          VerifiedGpuEvidence v = GpuEvidenceVerifierTest.verify(gpu.evidence(), gpu.chainPem(), NvidiaFixtures.PPCIE_NONCE, NOW);
          assertThat(v.driverVersion()).isEqualTo("590.12");
          assertThat(v.vbiosVersion()).isEqualTo("96.00.A5.00.01");
        }
      },
      "nv-chain-case2", () -> chainFails("trustee/nvidia/hopper_cert_chain_case2.txt"),
      "nv-chain-case3", () -> chainFails("trustee/nvidia/hopper_cert_chain_case3.txt"),
      "nv-chain-case4", () -> chainFails("trustee/nvidia/hopper_cert_chain_case4.txt"));

  static void chainFails(String chain) {
    assertCode(() -> GpuEvidenceVerifierTest.verify(NvidiaFixtures.hexEvidence(GpuEvidenceVerifierTest.SAMPLE),
        chain, NvidiaFixtures.SAMPLE_2025_NONCE, NOW), "device_chain_malformed");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void expectedOutcome(String name) throws Throwable {
    assertThat(EXPECTED).as("no check for case " + name).containsKey(name);
    EXPECTED.get(name).execute();
  }
}
