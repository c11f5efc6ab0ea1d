package org.cocoonjvm.attest.tee;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.policy.AllowList;
import org.cocoonjvm.attest.policy.ImageHash;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.policy.PolicyViolation.Reason;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.cocoonjvm.attest.quote.TdReportBody;
import org.junit.jupiter.api.Test;

/** Dev quotes go through the same DCAP code as Intel's once the dev root is pinned. */
class DevTeeTest {
  static final Instant NOW = Instant.parse("2026-11-22T01:00:00Z");
  static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
  static final DevTee TEE = DevTee.generate(CLOCK);
  static final Policy DEV_OK = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);

  static AttestationVerifier verifier() {
    return AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), CLOCK);
  }

  static byte[] reportData(int fill) {
    byte[] b = new byte[64];
    java.util.Arrays.fill(b, (byte) fill);
    return b;
  }

  @Test
  void devQuoteIsAcceptedByADevAllowingPolicyAndLabelledNotHardwareBacked() throws Exception {
    byte[] quote = TEE.quote(reportData(7));
    AttestationResult r = verifier().verify(quote, TEE.collateral(), DEV_OK, Optional.of(reportData(7)));
    assertThat(r.reasons()).isEmpty();
    assertThat(r.accepted()).isTrue();
    assertThat(r.status()).contains(TcbStatus.UP_TO_DATE);
    assertThat(r.tee().orElseThrow().label()).isEqualTo("dev (not hardware-backed)");
    assertThat(r.toJson().getString("tee")).isEqualTo("dev (not hardware-backed)");
    TdReportBody td = QuoteParser.parse(quote).td();
    assertThat(r.imageHash()).contains(ImageHash.of(td));
    assertThat(td.mrTdHex()).isEqualTo(TEE.measurements().mrTdHex());
    assertThat(r.collateralNextUpdate().orElseThrow()).isAfter(NOW);
  }

  @Test
  void defaultPoliciesRejectTheDevTee() throws Exception {
    byte[] quote = TEE.quote(reportData(1));
    AttestationResult unchecked = verifier().verify(quote, TEE.collateral(), Policy.MEASUREMENTS_UNCHECKED, Optional.empty());
    assertThat(unchecked.accepted()).isFalse();
    assertThat(unchecked.violations()).extracting(v -> v.reason()).containsExactly(Reason.DEV_TEE_NOT_ALLOWED);
    AttestationResult strict = verifier().verify(quote, TEE.collateral(), Policy.STRICT, Optional.empty());
    assertThat(strict.violations()).extracting(v -> v.reason()).contains(Reason.DEV_TEE_NOT_ALLOWED, Reason.MRTD_NOT_ALLOWED);
  }

  @Test
  void withoutThePinnedDevRootTheChainIsNotTrusted() throws Exception {
    AttestationResult r = AttestationVerifier.create(TrustAnchors.intel(), CLOCK)
        .verify(TEE.quote(reportData(1)), TEE.collateral(), DEV_OK, Optional.empty());
    assertThat(r.failure().orElseThrow().code()).isEqualTo("root_not_pinned");
  }

  @Test
  void anotherDevRootIsNotTrustedEither() throws Exception {
    DevTee other = DevTee.generate(CLOCK);
    AttestationResult r = verifier().verify(other.quote(reportData(1)), other.collateral(), DEV_OK, Optional.empty());
    assertThat(r.failure().orElseThrow().code()).isEqualTo("root_not_pinned");
  }

  @Test
  void sameSeedSameRootSoCollateralMadeElsewhereVerifies() throws Exception {
    byte[] seed = "shared dev seed".getBytes();
    DevTee worker = DevTee.fromSeed(seed, CLOCK);
    DevTee gateway = DevTee.fromSeed(seed, Clock.offset(CLOCK, Duration.ofMinutes(5)));
    AttestationResult r = AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(gateway.root())), CLOCK)
        .verify(worker.quote(reportData(2)), gateway.collateral(), DEV_OK, Optional.empty());
    assertThat(r.reasons()).isEmpty();
  }

  @Test
  void aFlippedBitAnywhereSignedIsRejected() throws Exception {
    byte[] quote = TEE.quote(reportData(3));
    // header, TD body fields (tee_tcb_svn, mr_seam, td_attributes, mr_td, rtmr3, report_data),
    // quote signature, attestation key, QE report, QE report signature, QE auth data, PEM chain.
    int[] offsets = {0, 20, 48 + 1, 48 + 30, 48 + 121, 48 + 140, 48 + 500, 48 + 560,
        636, 700 + 5, 770 + 100, 770 + 330, 1154 + 10, 1220 + 5, 1258 + 100, 1258 + 700, 1258 + 1500};
    for (int off : offsets) {
      byte[] t = quote.clone();
      t[off] ^= 0x01;
      AttestationResult r = verifier().verify(t, TEE.collateral(), DEV_OK, Optional.empty());
      assertThat(r.accepted()).as("bit flip at %d: %s", off, r.reasons()).isFalse();
    }
    // Signed collateral text too.
    String tampered = TEE.collateral().tcbInfoJson().replace("UpToDate", "UpToDatf");
    AttestationResult r = verifier().verify(quote, TEE.collateral().withTcbInfoJson(tampered), DEV_OK, Optional.empty());
    assertThat(r.failure().orElseThrow().code()).isEqualTo("tcb_info_signature_invalid");
  }

  @Test
  void measurementsAndPolicyChecks() throws Exception {
    DevTee debug = TEE.withMeasurements(TEE.measurements().withTdAttributes(TdReportBody.TD_ATTR_DEBUG | (1L << 5)));
    AttestationResult r = verifier().verify(debug.quote(reportData(4)), debug.collateral(), DEV_OK, Optional.of(reportData(5)));
    assertThat(r.violations()).extracting(v -> v.reason()).containsExactlyInAnyOrder(
        Reason.DEBUG_NOT_ALLOWED, Reason.RESERVED_TD_ATTRIBUTES, Reason.SEPT_VE_DISABLE_REQUIRED, Reason.REPORT_DATA_MISMATCH);

    byte[] quote = TEE.quote(reportData(6));
    String imageHash = ImageHash.of(QuoteParser.parse(quote).td());
    Policy pinned = DEV_OK.withMrtd(AllowList.of(java.util.Set.of(TEE.measurements().mrTdHex().toUpperCase())))
        .withImageHashes(AllowList.of(java.util.Set.of(imageHash)));
    assertThat(verifier().verify(quote, TEE.collateral(), pinned, Optional.of(reportData(6))).reasons()).isEmpty();
    DevTee otherImage = TEE.withMeasurements(TEE.measurements().withRtmr(2, new byte[48]));
    AttestationResult other = verifier().verify(otherImage.quote(reportData(6)), otherImage.collateral(), pinned, Optional.empty());
    assertThat(other.violations()).extracting(v -> v.reason()).containsExactly(Reason.IMAGE_HASH_NOT_ALLOWED);
  }

  @Test
  void swHardeningNeededPassesOnlyWithItsAdvisoriesListed() throws Exception {
    DevTee sw = TEE.withTcbStatus(TcbStatus.SW_HARDENING_NEEDED, List.of("INTEL-SA-00615", "INTEL-SA-00837"));
    byte[] quote = sw.quote(reportData(8));
    assertThat(verifier().verify(quote, sw.collateral(), DEV_OK, Optional.empty()).violations())
        .extracting(v -> v.reason()).containsExactly(Reason.TCB_STATUS_NOT_ACCEPTED);
    Policy oneListed = DEV_OK.withAcceptedStatuses(
        java.util.Set.of(TcbStatus.UP_TO_DATE, TcbStatus.SW_HARDENING_NEEDED), Optional.of(java.util.Set.of("INTEL-SA-00615")));
    AttestationResult r = verifier().verify(quote, sw.collateral(), oneListed, Optional.empty());
    assertThat(r.violations()).extracting(v -> v.detail()).singleElement().asString().contains("INTEL-SA-00837");
    Policy both = DEV_OK.withAcceptedStatuses(java.util.Set.of(TcbStatus.SW_HARDENING_NEEDED),
        Optional.of(java.util.Set.of("INTEL-SA-00615", "INTEL-SA-00837")));
    assertThat(verifier().verify(quote, sw.collateral(), both, Optional.empty()).accepted()).isTrue();
  }

  @Test
  void expiredCollateralIsRejected() throws Exception {
    AttestationVerifier later = AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())),
        Clock.offset(CLOCK, Duration.ofDays(45)));
    AttestationResult r = later.verify(TEE.quote(reportData(1)), TEE.collateral(), DEV_OK, Optional.empty());
    assertThat(r.failure().orElseThrow().code()).isEqualTo("collateral_expired");
  }

  @Test
  void reportDataMustBe64Bytes() {
    assertThatThrownBy(() -> TEE.quote(new byte[32])).isInstanceOf(QuoteSourceException.class)
        .extracting(e -> ((QuoteSourceException) e).reason()).isEqualTo(QuoteSourceException.Reason.BAD_REPORT_DATA);
  }

  static String hex(byte[] b) {
    return HexFormat.of().formatHex(b);
  }
}
