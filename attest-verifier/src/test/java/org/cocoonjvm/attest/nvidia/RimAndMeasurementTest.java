package org.cocoonjvm.attest.nvidia;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.attest.nvidia.GpuEvidenceVerifierTest.assertCode;
import static org.cocoonjvm.attest.nvidia.NvidiaFixtures.HEX;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/** RIM signatures and chains, version checks and the measurement comparison. */
class RimAndMeasurementTest {
  static final String LEGACY_DRIVER_RIM = "nvtrust/legacy-2023/Driver_RIM_test_no_gpu.swidtag";
  static final String LEGACY_VBIOS_RIM = "nvtrust/legacy-2023/1010_0200_882_96005E0001_test_no_gpu.swidtag";

  static VerifiedRim rim(String relative, Instant now) throws GpuVerificationException {
    return RimVerifier.create(NvidiaFixtures.clockAt(now)).verify(NvidiaFixtures.bytes(relative));
  }

  @Test
  void legacyRims_verify_withTheirVersionsAndActiveMeasurements() throws Exception {
    VerifiedRim driver = rim(LEGACY_DRIVER_RIM, NvidiaFixtures.LEGACY_NOW);
    VerifiedRim vbios = rim(LEGACY_VBIOS_RIM, NvidiaFixtures.LEGACY_NOW);
    assertThat(driver.colloquialVersion()).isEqualTo("545.00");
    assertThat(vbios.colloquialVersion()).isEqualTo("96.00.5E.00.01");
    assertThat(driver.active()).hasSize(21);
    assertThat(vbios.active()).hasSize(12);
    assertThat(driver.signer().getSubjectX500Principal().getName()).contains("HCC RIM L4 Signer");
  }

  @Test
  void legacyEvidence_endToEnd_allActiveMeasurementsMatch() throws Exception {
    GpuAttestation a = NvidiaGpuVerifier.create(NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW)).verify(
        NvidiaFixtures.hexEvidence("nvtrust/legacy-2023/attestationReport.txt"),
        NvidiaFixtures.bytes("nvtrust/legacy-2023/gpuAkCertChain.txt"), HEX.parseHex(NvidiaFixtures.LEGACY_NONCE),
        NvidiaFixtures.bytes(LEGACY_DRIVER_RIM), NvidiaFixtures.bytes(LEGACY_VBIOS_RIM));
    assertThat(a.driverVersion()).isEqualTo("545.00");
    assertThat(a.vbiosVersion()).isEqualTo("96.00.5E.00.01");
    MeasurementComparison m = a.measurements();
    assertThat(m.mismatches()).isEmpty();
    assertThat(m.compared().size() + m.skipped().size()).isEqualTo(33);
  }

  @Test
  void sample2025_againstTheRepositoryRims_differsAt20Indexes() throws Exception {
    VerifiedGpuEvidence evidence = GpuEvidenceVerifierTest.sample(
        NvidiaFixtures.hexEvidence(GpuEvidenceVerifierTest.SAMPLE));
    VerifiedRim driver = rim("nvtrust/rims/Driver_RIM_test_no_gpu.swidtag", NvidiaFixtures.LEGACY_NOW);
    VerifiedRim testVbios = rim("nvtrust/rims/1010_0200_882_96005E0001_test_no_gpu.swidtag", NvidiaFixtures.LEGACY_NOW);
    VerifiedRim prodVbios = rim("nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag", NvidiaFixtures.LEGACY_NOW);
    MeasurementComparison m = MeasurementComparison.compare(evidence.evidence(), driver, testVbios);
    assertThat(m.mismatches()).extracting(MeasurementComparison.Mismatch::index).containsExactly(
        1, 2, 3, 7, 9, 11, 21, 22, 25, 26, 27, 29, 30, 31, 32, 34, 36, 37, 39, 40);
    // NVDEC0 is disabled (0x55) on this GPU, so index 35 is not compared.
    assertThat(m.skipped()).containsExactly(35);
    assertThat(m.compared()).hasSize(32);
    // The PROD VBIOS RIM differs from the test one at index 3, which this GPU happens to match.
    assertThat(MeasurementComparison.compare(evidence.evidence(), driver, prodVbios).mismatches()).hasSize(19);
    assertCode(() -> {
      NvidiaGpuVerifier.checkVersions(evidence, driver, testVbios);
      return null;
    }, "rim_version_mismatch");
  }

  @Test
  void sample2025_fullVerifier_stopsAtTheRimVersion() {
    assertCode(() -> NvidiaGpuVerifier.create(NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW)).verify(
        NvidiaFixtures.hexEvidence(GpuEvidenceVerifierTest.SAMPLE),
        NvidiaFixtures.bytes(GpuEvidenceVerifierTest.SAMPLE_CHAIN), HEX.parseHex(NvidiaFixtures.SAMPLE_2025_NONCE),
        NvidiaFixtures.bytes("nvtrust/rims/Driver_RIM_test_no_gpu.swidtag"),
        NvidiaFixtures.bytes("nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag")), "rim_version_mismatch");
  }

  @Test
  void rimsInSwappedRoles_conflictOrMismatch() throws Exception {
    VerifiedRim driver = rim(LEGACY_DRIVER_RIM, NvidiaFixtures.LEGACY_NOW);
    SpdmEvidence evidence = SpdmEvidence.parse(NvidiaFixtures.hexEvidence("nvtrust/legacy-2023/attestationReport.txt"));
    assertCode(() -> MeasurementComparison.compare(evidence, driver, driver), "rim_index_conflict");
  }

  @Test
  void rimSignerOutsideItsValidity_isRejected() {
    // HCC RIM L4 Signer of the legacy driver RIM: 2023-06-27T06:10:12Z → 2025-06-26T06:10:12Z.
    assertCode(() -> rim(LEGACY_DRIVER_RIM, Instant.parse("2025-06-26T06:10:13Z")), "rim_chain_expired");
    assertCode(() -> rim(LEGACY_DRIVER_RIM, Instant.parse("2023-06-27T06:10:11Z")), "rim_chain_not_yet_valid");
  }

  @Test
  void rimAgainstTheDeviceRoot_isNotPinned() {
    var deviceRoot = NvidiaRoots.deviceIdentityCa().getPublicKey();
    assertCode(() -> RimVerifier.create(deviceRoot, NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW))
        .verify(NvidiaFixtures.bytes(LEGACY_DRIVER_RIM)), "rim_chain_invalid");
  }

  @Test
  void editedGoldenValue_breaksTheRimSignature() {
    String xml = NvidiaFixtures.text(LEGACY_DRIVER_RIM);
    String golden = "0e0ee161b59bf124ce6b6dca6efa7616d28077862c0e57dca7d5efd63d00eeed4851922941e846a38c464cbedbc168d9";
    assertThat(xml).contains(golden);
    byte[] edited = xml.replace(golden, golden.replace('0', '1')).getBytes(StandardCharsets.UTF_8);
    assertCode(() -> RimVerifier.create(NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW)).verify(edited),
        "rim_signature_invalid");
  }

  @Test
  void editedVersion_breaksTheRimSignature() {
    byte[] edited = NvidiaFixtures.text(LEGACY_DRIVER_RIM)
        .replace("colloquialVersion=\"545.00\"", "colloquialVersion=\"550.90.07\"").getBytes(StandardCharsets.UTF_8);
    assertCode(() -> RimVerifier.create(NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW)).verify(edited),
        "rim_signature_invalid");
  }

  @Test
  void doctypeOrMissingSignature_isMalformed() {
    String xml = NvidiaFixtures.text(LEGACY_DRIVER_RIM);
    byte[] doctype = ("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" + xml).getBytes(StandardCharsets.UTF_8);
    assertCode(() -> RimVerifier.create(NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW)).verify(doctype),
        "rim_malformed");
    int start = xml.indexOf("<ds:Signature");
    int end = xml.indexOf("</ds:Signature>") + "</ds:Signature>".length();
    byte[] unsigned = (xml.substring(0, start) + xml.substring(end)).getBytes(StandardCharsets.UTF_8);
    assertCode(() -> RimVerifier.create(NvidiaFixtures.clockAt(NvidiaFixtures.LEGACY_NOW)).verify(unsigned),
        "rim_malformed");
  }
}
