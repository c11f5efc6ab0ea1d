package org.cocoonjvm.attest.nvidia;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.attest.nvidia.GpuEvidenceVerifierTest.assertCode;
import static org.cocoonjvm.attest.nvidia.NvidiaFixtures.HEX;

import java.time.Instant;
import org.junit.jupiter.api.Test;

/** FWID and key-type cases no real chain provides, on a {@link TestGpuDevice} whose leaf carries a chosen FWID, or none. */
class DeviceTestPkiTest {
  static final Instant NOW = Instant.parse("2025-01-01T00:00:00Z");
  static final String EVIDENCE_FWID = TestGpuDevice.EVIDENCE_FWID;

  static TestGpuDevice pki(byte[] leafFwid, String intermediateCurve) throws Exception {
    return TestGpuDevice.create(leafFwid, intermediateCurve, NOW);
  }

  static VerifiedGpuEvidence verify(TestGpuDevice pki) throws Exception {
    return GpuEvidenceVerifier.create(pki.rootKey(), NvidiaFixtures.clockAt(NOW))
        .verify(pki.resignedSample(), pki.chain(), HEX.parseHex(NvidiaFixtures.SAMPLE_2025_NONCE));
  }

  @Test
  void matchingFwid_passes() throws Exception {
    assertThat(verify(pki(HEX.parseHex(EVIDENCE_FWID), "secp384r1")).certificateFwidHex()).isEqualTo(EVIDENCE_FWID);
  }

  @Test
  void otherFwid_isAMismatch() {
    byte[] other = HEX.parseHex(EVIDENCE_FWID);
    other[0] ^= 1;
    assertCode(() -> verify(pki(other, "secp384r1")), "fwid_mismatch");
  }

  @Test
  void leafWithoutTheDiceExtension_hasNoFwid() {
    assertCode(() -> verify(pki(null, "secp384r1")), "fwid_missing");
  }

  @Test
  void aP256Intermediate_isMalformed() {
    assertCode(() -> verify(pki(HEX.parseHex(EVIDENCE_FWID), "secp256r1")), "device_chain_malformed");
  }
}
