package org.cocoonjvm.attest.nvidia;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.cocoonjvm.attest.nvidia.NvidiaFixtures.HEX;

import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.ThrowingSupplier;
import org.opentest4j.TestAbortedException;

/** Device chain, SPDM signature, FWID and nonce on real Hopper evidence, and what breaks them. */
class GpuEvidenceVerifierTest {
  static final String SAMPLE = "nvtrust/hopperAttestationReport.txt";
  static final String SAMPLE_CHAIN = "nvtrust/hopperCertChain.txt";

  static VerifiedGpuEvidence verify(byte[] evidence, String chain, String nonce, Instant now)
      throws GpuVerificationException {
    return verify(evidence, NvidiaFixtures.bytes(chain), nonce, now);
  }

  static VerifiedGpuEvidence verify(byte[] evidence, byte[] chainPem, String nonce, Instant now)
      throws GpuVerificationException {
    return GpuEvidenceVerifier.create(NvidiaFixtures.clockAt(now))
        .verify(evidence, chainPem, HEX.parseHex(nonce));
  }

  static VerifiedGpuEvidence sample(byte[] evidence) throws GpuVerificationException {
    return verify(evidence, SAMPLE_CHAIN, NvidiaFixtures.SAMPLE_2025_NONCE, Instant.parse("2025-01-01T00:00:00Z"));
  }

  static void assertCode(ThrowingSupplier<?> call, String code) {
    Throwable thrown = catchThrowable(call::get);
    if (thrown instanceof TestAbortedException skipped) {
      throw skipped; // the fixtures are not in this checkout: a skip, not a failure
    }
    assertThat(thrown).isInstanceOf(GpuVerificationException.class)
        .satisfies(e -> assertThat(((GpuVerificationException) e).code()).as(e.getMessage()).isEqualTo(code));
  }

  @Test
  void legacy2023Evidence_passes_withoutAnEvidenceFwid() throws Exception {
    VerifiedGpuEvidence v = verify(NvidiaFixtures.hexEvidence("nvtrust/legacy-2023/attestationReport.txt"),
        "nvtrust/legacy-2023/gpuAkCertChain.txt", NvidiaFixtures.LEGACY_NONCE, NvidiaFixtures.LEGACY_NOW);
    assertThat(v.driverVersion()).isEqualTo("545.00");
    assertThat(v.vbiosVersion()).isEqualTo("96.00.5E.00.01");
    assertThat(v.evidenceFwidHex()).isEmpty();
    assertThat(v.certificateFwidHex()).hasSize(96);
    assertThat(v.evidence().blocks()).hasSize(64);
    assertThat(v.evidence().nvdec0Status()).hasValue(SpdmEvidence.NVDEC0_DISABLED);
    assertThat(v.evidence().trailingBytes()).isZero();
  }

  @Test
  void sample2025_passes_withMatchingFwid() throws Exception {
    VerifiedGpuEvidence v = sample(NvidiaFixtures.hexEvidence(SAMPLE));
    String fwid = "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d";
    assertThat(v.certificateFwidHex()).isEqualTo(fwid);
    assertThat(v.evidenceFwidHex()).hasValue(fwid);
    assertThat(v.driverVersion()).isEqualTo("550.90.07");
    assertThat(v.vbiosVersion()).isEqualTo("96.00.9F.00.01");
    assertThat(v.deviceLeaf().getSubjectX500Principal().getName()).contains("GH100 A01 GSP FMC LF");
  }

  @Test
  void cocoReport_withOneTrailingByte_passes_andTheTrailingByteIsNotSigned() throws Exception {
    byte[] evidence = NvidiaFixtures.hexEvidence("trustee/nvidia/hopper_coco_report1.txt");
    VerifiedGpuEvidence v = verify(evidence, "trustee/nvidia/hopper_coco_certs1.txt",
        NvidiaFixtures.COCO_NONCE, Instant.parse("2025-11-01T00:00:00Z"));
    assertThat(v.evidence().trailingBytes()).isEqualTo(1);
    assertThat(v.driverVersion()).isEqualTo("580.95.05");
    evidence[evidence.length - 1] ^= 0x5a;
    verify(evidence, "trustee/nvidia/hopper_coco_certs1.txt", NvidiaFixtures.COCO_NONCE,
        Instant.parse("2025-11-01T00:00:00Z"));
  }

  @Test
  void ppcieEightGpus_allPass() throws Exception {
    List<NvidiaFixtures.PpcieEntry> gpus = NvidiaFixtures.ppcie("nvtrust/ppcie_gpu_evidence.json");
    assertThat(gpus).hasSize(8);
    for (NvidiaFixtures.PpcieEntry gpu : gpus) {
      assertThat(gpu.arch()).isEqualTo("HOPPER");
      VerifiedGpuEvidence v = verify(gpu.evidence(), gpu.chainPem(), NvidiaFixtures.PPCIE_NONCE,
          Instant.parse("2025-11-01T00:00:00Z"));
      assertThat(v.driverVersion()).isEqualTo("590.12");
      assertThat(v.vbiosVersion()).isEqualTo("96.00.A5.00.01");
      assertThat(v.evidenceFwidHex()).hasValue(v.certificateFwidHex());
    }
  }

  @Test
  void trusteeChainCase1_isTheValidChain() throws Exception {
    verify(NvidiaFixtures.hexEvidence("trustee/nvidia/hopperAttestationReport.txt"),
        "trustee/nvidia/hopper_cert_chain_case1.txt", NvidiaFixtures.SAMPLE_2025_NONCE,
        Instant.parse("2025-01-01T00:00:00Z"));
  }

  @Test
  void trusteeChainCases2to4_rootOnly_missingIntermediate_missingLeaf_areMalformed() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    for (int c = 2; c <= 4; c++) {
      String chain = "trustee/nvidia/hopper_cert_chain_case" + c + ".txt";
      assertCode(() -> verify(evidence, chain, NvidiaFixtures.SAMPLE_2025_NONCE,
          Instant.parse("2025-01-01T00:00:00Z")), "device_chain_malformed");
    }
  }

  @Test
  void chainCase4_itsFirstCertificateHasNoFwidExtension() throws Exception {
    var certs = PinnedChain.DEVICE.parse(NvidiaFixtures.bytes("trustee/nvidia/hopper_cert_chain_case4.txt"));
    assertCode(() -> GpuEvidenceVerifier.certificateFwid(certs.get(0)), "fwid_missing");
  }

  @Test
  void flippedBitInAMeasurement_breaksTheSignature() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    evidence[SpdmEvidence.REQUEST_LENGTH + 8 + 7 + 10] ^= 0x01;
    assertCode(() -> sample(evidence), "evidence_signature_invalid");
  }

  @Test
  void flippedBitInTheRequestNonce_breaksTheSignature() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    evidence[4] ^= 0x01;
    assertCode(() -> sample(evidence), "evidence_signature_invalid");
  }

  @Test
  void flippedBitInTheSignature_breaksIt() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    evidence[evidence.length - 10] ^= 0x01;
    assertCode(() -> sample(evidence), "evidence_signature_invalid");
  }

  @Test
  void wrongNonce_isRejectedAfterAValidSignature() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    String other = NvidiaFixtures.SAMPLE_2025_NONCE.replace('9', '8');
    assertCode(() -> verify(evidence, SAMPLE_CHAIN, other, Instant.parse("2025-01-01T00:00:00Z")),
        "nonce_mismatch");
  }

  @Test
  void anotherGpusChain_doesNotVerifyTheSignature() {
    assertCode(() -> verify(NvidiaFixtures.hexEvidence(SAMPLE), "trustee/nvidia/hopper_coco_certs1.txt",
        NvidiaFixtures.SAMPLE_2025_NONCE, Instant.parse("2025-01-01T00:00:00Z")), "evidence_signature_invalid");
  }

  @Test
  void clockOutsideTheChainsValidity_isRejected() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    // The Provisioner ICA is the youngest certificate: notBefore 2022-03-01T00:00:00Z.
    assertCode(() -> verify(evidence, SAMPLE_CHAIN, NvidiaFixtures.SAMPLE_2025_NONCE,
        Instant.parse("2022-02-28T23:59:59Z")), "device_chain_not_yet_valid");
    assertCode(() -> verify(evidence, SAMPLE_CHAIN, NvidiaFixtures.SAMPLE_2025_NONCE,
        Instant.parse("+10000-01-01T00:00:00Z")), "device_chain_expired");
  }

  @Test
  void chainEndingElsewhere_isNotPinned() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    var rimRoot = NvidiaRoots.corimSigningRootCa().getPublicKey();
    assertCode(() -> GpuEvidenceVerifier.create(rimRoot, NvidiaFixtures.clockAt("2025-01-01T00:00:00Z"))
        .verify(evidence, NvidiaFixtures.bytes(SAMPLE_CHAIN), HEX.parseHex(NvidiaFixtures.SAMPLE_2025_NONCE)),
        "device_root_not_pinned");
  }

  @Test
  void swappedIntermediates_breakTheChain() throws Exception {
    var certs = new java.util.ArrayList<>(PinnedChain.DEVICE.parse(NvidiaFixtures.bytes(SAMPLE_CHAIN)));
    java.util.Collections.swap(certs, 1, 2);
    assertCode(() -> GpuEvidenceVerifier.create(NvidiaFixtures.clockAt("2025-01-01T00:00:00Z"))
        .verify(NvidiaFixtures.hexEvidence(SAMPLE), certs, HEX.parseHex(NvidiaFixtures.SAMPLE_2025_NONCE)),
        "device_chain_signature_invalid");
  }

  @Test
  void truncatedOrCorruptEvidence_isMalformed() {
    byte[] evidence = NvidiaFixtures.hexEvidence(SAMPLE);
    assertCode(() -> sample(Arrays.copyOf(evidence, evidence.length - 1)), "evidence_malformed");
    assertCode(() -> sample(Arrays.copyOf(evidence, 20)), "evidence_malformed");
    byte[] wrongCount = evidence.clone();
    wrongCount[SpdmEvidence.REQUEST_LENGTH + 4] = 63;
    assertCode(() -> sample(wrongCount), "evidence_malformed");
    byte[] wrongCode = evidence.clone();
    wrongCode[SpdmEvidence.REQUEST_LENGTH + 1] = 0x61;
    assertCode(() -> sample(wrongCode), "evidence_malformed");
    byte[] noSignatureRequested = evidence.clone();
    noSignatureRequested[2] = 0;
    assertCode(() -> sample(noSignatureRequested), "evidence_malformed");
  }

  @Test
  void gpuNonce_isSha256OfTheLabelAndTheKey() {
    byte[] key = new byte[32];
    for (int i = 0; i < 32; i++) key[i] = (byte) i;
    assertThat(HEX.formatHex(GpuNonce.forTlsPublicKey(key)))
        .isEqualTo("99ad6dd5f218c1a294526cf6ce3a69b4c5479475c2cf90a477c0c319b0e7fa7b");
  }
}
