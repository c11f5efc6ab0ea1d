package org.cocoonjvm.attest.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.quote.Fixtures;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.junit.jupiter.api.Test;

class PolicyTest {
  static final String MRTD =
      "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
  static final String HASH = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

  @Test
  void intelRootKeyIdIsCocoonsDefault() {
    assertThat(TrustAnchors.rootKeyId(TrustAnchors.loadIntelRoot().getPublicKey())).isEqualTo(Policy.INTEL_ROOT_KEY_ID);
  }

  @Test
  void jsonOverridesTheBaseAndAbsentKeysKeepIt() {
    Policy p = Policy.parse("""
        {"accepted_statuses": ["UpToDate", "SWHardeningNeeded"], "allowed_advisories": ["INTEL-SA-00615"],
         "mrtd": ["0x%s"], "rtmr3": "any", "models": ["qwen@%s"], "allow_dev_tee": true,
         "require_sept_ve_disable": false}
        """.formatted(MRTD.toUpperCase(), HASH), Policy.STRICT);
    assertThat(p.acceptedStatuses()).containsExactlyInAnyOrder(TcbStatus.UP_TO_DATE, TcbStatus.SW_HARDENING_NEEDED);
    assertThat(p.allowedAdvisories()).contains(Set.of("INTEL-SA-00615"));
    assertThat(p.mrtd().allows(MRTD)).isTrue();
    assertThat(p.rtmrs().get(3)).isEqualTo(AllowList.ANY);
    assertThat(p.rtmrs().get(0)).isEqualTo(AllowList.NOTHING);
    assertThat(p.imageHashes()).isEqualTo(AllowList.NOTHING);
    assertThat(p.allowDevTee()).isTrue();
    assertThat(p.requireSeptVeDisable()).isFalse();
    assertThat(p.allowDebug()).isFalse();
    assertThat(p.rootKeyIds().allows(Policy.INTEL_ROOT_KEY_ID)).isTrue();
    assertThat(p.checkModels(List.of("qwen@" + HASH.toUpperCase()))).isEmpty();
    assertThat(p.checkModels(List.of("qwen@" + "f".repeat(64), "no-hash"))).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.MODEL_NOT_ALLOWED, PolicyViolation.Reason.MODEL_NOT_ALLOWED);
  }

  @Test
  void mistakesAreRejectedNotIgnored() {
    assertThatThrownBy(() -> Policy.parse("{\"mrdt\": []}", Policy.STRICT)).hasMessageContaining("unknown key 'mrdt'");
    assertThatThrownBy(() -> Policy.parse("{\"accepted_statuses\": [\"Fine\"]}", Policy.STRICT)).hasMessageContaining("Fine");
    assertThatThrownBy(() -> Policy.parse("{\"accepted_statuses\": [\"SWHardeningNeeded\"]}", Policy.STRICT))
        .hasMessageContaining("allowed_advisories");
    assertThatThrownBy(() -> Policy.parse("{\"mrtd\": [\"abcd\"]}", Policy.STRICT)).hasMessageContaining("48 bytes");
    assertThatThrownBy(() -> Policy.parse("{\"image_hashes\": \"all\"}", Policy.STRICT)).hasMessageContaining("\"any\"");
    assertThatThrownBy(() -> Policy.parse("{\"allow_debug\": \"yes\"}", Policy.STRICT)).hasMessageContaining("true or false");
    assertThatThrownBy(() -> Policy.parse("{\"models\": [\"qwen\"]}", Policy.STRICT)).hasMessageContaining("name@");
    assertThatThrownBy(() -> Policy.parse("[1]", Policy.STRICT)).isInstanceOf(IllegalArgumentException.class);
    // A list's error names it by its path in the file, nested ones too.
    assertThatThrownBy(() -> Policy.parse("{\"mrtd\": [1]}", Policy.STRICT))
        .hasMessage("policy: mrtd must be an array of strings, found 1");
    assertThatThrownBy(() -> Policy.parse("{\"gpu\": {\"rims\": \"a.xml\"}}", Policy.STRICT))
        .hasMessage("policy: gpu.rims must be an array of strings");
    assertThatThrownBy(() -> Policy.parse("{\"gpu\": {\"driver_versions\": [550]}}", Policy.STRICT))
        .hasMessage("policy: gpu.driver_versions must be an array of strings, found 550");
    assertThatThrownBy(() -> Policy.parse("{\"config\": [\"native\"]}", Policy.STRICT)).hasMessage("policy: config must be an object");
    assertThatThrownBy(() -> Policy.parse("{\"config\": {\"engine\": \"native\"}}", Policy.STRICT))
        .hasMessage("policy: config.engine must be an array of strings");
    assertThatThrownBy(() -> Policy.parse("{\"config\": {\"engine\": []}}", Policy.STRICT))
        .hasMessageStartingWith("policy: config.engine lists no value");
  }

  /** The config section: each key's accepted values; absent, claims are not looked at. */
  @Test
  void configSection_listsTheValuesAcceptedPerKey() {
    assertThat(Policy.STRICT.config()).isEqualTo(ConfigPolicy.ANY);
    Policy p = Policy.parse("{\"config\": {\"engine\": [\"native\"], \"role\": [\"worker\"]}}", Policy.STRICT);
    assertThat(p.config().allowed()).containsOnlyKeys("engine", "role");
    assertThat(p.config().violations(java.util.Map.of("engine", "native", "role", "worker", "other", "x"))).isEmpty();
    assertThat(p.config().violations(java.util.Map.of("engine", "synthetic"))).containsExactly(
        "the peer's engine is 'synthetic'; the policy accepts [native]",
        "the peer's configuration does not say its role; the policy accepts [worker]");
  }

  /** Real Intel quotes through the single entry point. */
  @Test
  void realQuotesThroughTheVerifier() throws Exception {
    byte[] quote = Fixtures.quote("dcap-qvl/tdx_quote");
    Collateral c = Collateral.parse(Files.readString(Fixtures.dir().resolve("dcap-qvl/tdx_quote_collateral.json")));
    AttestationVerifier v = AttestationVerifier.create(TrustAnchors.intel(),
        Clock.fixed(Instant.parse("2025-07-19T10:00:34Z"), ZoneOffset.UTC));
    AttestationResult ok = v.verify(quote, c, Policy.MEASUREMENTS_UNCHECKED, Optional.empty());
    assertThat(ok.reasons()).isEmpty();
    assertThat(ok.tee()).contains(TeeKind.INTEL_TDX);
    assertThat(ok.rootKeyId()).contains(Policy.INTEL_ROOT_KEY_ID);
    assertThat(ok.imageHash()).contains(ImageHash.of(QuoteParser.parse(quote).td()));
    assertThat(ok.toJson().getString("tee")).isEqualTo("TDX");

    AttestationResult strict = v.verify(quote, c, Policy.STRICT, Optional.of(new byte[64]));
    assertThat(strict.violations()).extracting(PolicyViolation::reason).containsExactlyInAnyOrder(
        PolicyViolation.Reason.MRTD_NOT_ALLOWED, PolicyViolation.Reason.RTMR_NOT_ALLOWED, PolicyViolation.Reason.RTMR_NOT_ALLOWED,
        PolicyViolation.Reason.RTMR_NOT_ALLOWED, PolicyViolation.Reason.RTMR_NOT_ALLOWED,
        PolicyViolation.Reason.MR_CONFIG_ID_NOT_ALLOWED, PolicyViolation.Reason.IMAGE_HASH_NOT_ALLOWED,
        PolicyViolation.Reason.REPORT_DATA_MISMATCH);

    Policy otherRoot = Policy.MEASUREMENTS_UNCHECKED.withRootKeyIds(AllowList.of(Set.of("ab".repeat(48))));
    assertThat(v.verify(quote, c, otherRoot, Optional.empty()).violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.ROOT_KEY_NOT_ALLOWED);

    byte[] bad = quote.clone();
    bad[0] = 9;
    assertThat(v.verify(bad, c, Policy.MEASUREMENTS_UNCHECKED, Optional.empty()).failure().orElseThrow().code())
        .isEqualTo("unsupported_version");
  }

  static AttestationResult verifyFixture(String quote, String collateral, String at, Policy policy) throws Exception {
    Collateral c = Collateral.parse(Files.readString(Fixtures.dir().resolve(collateral)));
    return AttestationVerifier.create(TrustAnchors.intel(), Clock.fixed(Instant.parse(at), ZoneOffset.UTC))
        .verify(Fixtures.quote(quote), c, policy, Optional.empty());
  }

  static final String SGX_QUOTE = "dcap-qvl/sgx_quote";
  static final String SGX_COLLATERAL = "dcap-qvl/sgx_quote_collateral.json";
  static final String SGX_AT = "2025-07-19T10:01:17Z";

  /** The fixture enclave's MRENCLAVE, listed so that SGX may be allowed. */
  static String sgxMrEnclave() throws Exception {
    return ((org.cocoonjvm.attest.quote.EnclaveReportBody) QuoteParser.parse(Fixtures.quote(SGX_QUOTE)).body()).mrEnclave().hex();
  }

  /** Real SGX collateral: ConfigurationAndSWHardeningNeeded with INTEL-SA-00289 and INTEL-SA-00615. */
  @Test
  void swHardeningStatusNeedsEachAdvisoryListed() throws Exception {
    String sgx = "\"allowed_tee\": [\"SGX\"], \"mrenclave\": [\"" + sgxMrEnclave() + "\"], ";
    AttestationResult byDefault = verifyFixture(SGX_QUOTE, SGX_COLLATERAL, SGX_AT, Policy.parse("{" + sgx.substring(0, sgx.length() - 2)
        + "}", Policy.MEASUREMENTS_UNCHECKED));
    assertThat(byDefault.tee()).contains(TeeKind.INTEL_SGX);
    assertThat(byDefault.violations()).extracting(PolicyViolation::reason).containsExactly(PolicyViolation.Reason.TCB_STATUS_NOT_ACCEPTED);
    Policy one = Policy.parse("{" + sgx + "\"accepted_statuses\": [\"UpToDate\", \"ConfigurationAndSWHardeningNeeded\"],"
        + " \"allowed_advisories\": [\"INTEL-SA-00615\"]}", Policy.MEASUREMENTS_UNCHECKED);
    assertThat(verifyFixture(SGX_QUOTE, SGX_COLLATERAL, SGX_AT, one).violations()).extracting(PolicyViolation::detail)
        .singleElement().asString().contains("INTEL-SA-00289");
    Policy both = Policy.parse("{" + sgx + "\"accepted_statuses\": [\"ConfigurationAndSWHardeningNeeded\"],"
        + " \"allowed_advisories\": [\"INTEL-SA-00615\", \"INTEL-SA-00289\"]}", Policy.MEASUREMENTS_UNCHECKED);
    assertThat(verifyFixture(SGX_QUOTE, SGX_COLLATERAL, SGX_AT, both).reasons()).isEmpty();
  }

  /**
   * Audit I-8: with every TD list "any" (the README's dev policy, the demo's, MEASUREMENTS_UNCHECKED)
   * a real SGX enclave's quote used to pass. SGX now passes only when listed, with its enclave.
   */
  @Test
  void sgxQuotesPassOnlyWhenSgxIsAllowedAndTheEnclaveListed() throws Exception {
    String accepting = "\"accepted_statuses\": [\"UpToDate\", \"ConfigurationAndSWHardeningNeeded\"],"
        + " \"allowed_advisories\": [\"INTEL-SA-00615\", \"INTEL-SA-00289\"]";
    String devPolicy = "{\"allow_dev_tee\": true, \"mrtd\": \"any\", \"rtmr0\": \"any\", \"rtmr1\": \"any\", \"rtmr2\": \"any\","
        + " \"rtmr3\": \"any\", \"mr_config_id\": \"any\", \"image_hashes\": \"any\", \"models\": \"any\", " + accepting + "}";
    for (Policy anyTd : List.of(Policy.parse(devPolicy, Policy.STRICT), Policy.parse("{" + accepting + "}", Policy.MEASUREMENTS_UNCHECKED))) {
      assertThat(verifyFixture(SGX_QUOTE, SGX_COLLATERAL, SGX_AT, anyTd).violations()).extracting(PolicyViolation::reason)
          .contains(PolicyViolation.Reason.TEE_NOT_ALLOWED);
    }

    assertThatThrownBy(() -> Policy.parse("{\"allowed_tee\": [\"SGX\"]}", Policy.MEASUREMENTS_UNCHECKED))
        .hasMessageContaining("mrenclave or mrsigner");
    assertThatThrownBy(() -> Policy.parse("{\"allowed_tee\": [\"TDX\", \"SEV\"]}", Policy.STRICT)).hasMessageContaining("SEV");
    assertThatThrownBy(() -> Policy.parse("{\"allowed_tee\": \"any\"}", Policy.STRICT)).hasMessageContaining("array of strings");

    Policy both = Policy.parse("{\"allowed_tee\": [\"TDX\", \"SGX\"], \"mrenclave\": [\"" + sgxMrEnclave() + "\"], " + accepting
        + "}", Policy.MEASUREMENTS_UNCHECKED);
    assertThat(verifyFixture(SGX_QUOTE, SGX_COLLATERAL, SGX_AT, both).reasons()).isEmpty();
    assertThat(verifyFixture("dcap-qvl/tdx_quote", "dcap-qvl/tdx_quote_collateral.json", "2025-07-19T10:00:34Z", both).reasons())
        .isEmpty();
    Policy otherEnclave = both.withMrEnclave(AllowList.of(Set.of("ab".repeat(32))));
    assertThat(verifyFixture(SGX_QUOTE, SGX_COLLATERAL, SGX_AT, otherEnclave).violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.MRENCLAVE_NOT_ALLOWED);
    Policy otherSigner = both.withMrSigner(AllowList.of(Set.of("ab".repeat(32)))).withMrEnclave(AllowList.ANY);
    assertThat(verifyFixture(SGX_QUOTE, SGX_COLLATERAL, SGX_AT, otherSigner).violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.MRSIGNER_NOT_ALLOWED);
    Policy sgxOnly = both.withAllowedTees(Set.of(TeeKind.INTEL_SGX));
    assertThat(verifyFixture("dcap-qvl/tdx_quote", "dcap-qvl/tdx_quote_collateral.json", "2025-07-19T10:00:34Z", sgxOnly)
        .violations()).extracting(PolicyViolation::reason).containsExactly(PolicyViolation.Reason.TEE_NOT_ALLOWED);
  }

  /**
   * Audit I-5: older collateral that Intel signed and that is still current (dcap-qvl's
   * tdx_quote_collateral, evaluation 17) passes unless the policy names a minimum evaluation.
   */
  @Test
  void collateralBelowTheMinimumTcbEvaluationDataNumberIsRefused() throws Exception {
    String q = "dcap-qvl/tdx_quote";
    String at = "2025-07-19T10:00:34Z";
    Policy min18 = Policy.parse("{\"min_tcb_evaluation_data_number\": 18}", Policy.MEASUREMENTS_UNCHECKED);
    assertThat(verifyFixture(q, "dcap-qvl/tdx_quote_collateral.json", at, Policy.MEASUREMENTS_UNCHECKED).reasons()).isEmpty();
    assertThat(verifyFixture(q, "dcap-qvl/tdx_quote_collateral.json", at, min18).violations())
        .extracting(PolicyViolation::toString).containsExactly(
            "tcb_evaluation_data_number_too_low: TCB Info tcbEvaluationDataNumber 17 < 18",
            "tcb_evaluation_data_number_too_low: QE Identity tcbEvaluationDataNumber 17 < 18");
    assertThat(verifyFixture(q, "dcap-qvl/tdx_quote_collateral.json", at,
        Policy.parse("{\"min_tcb_evaluation_data_number\": 17}", Policy.MEASUREMENTS_UNCHECKED)).reasons()).isEmpty();
    // The same platform family's later collateral (evaluation 18) meets it.
    assertThat(verifyFixture("cocoon/quote.dat", "dcap-qvl/tdx_quote_outdated_collateral.json", "2026-03-01T00:00:00Z", min18)
        .reasons()).isEmpty();
    assertThatThrownBy(() -> Policy.parse("{\"min_tcb_evaluation_data_number\": \"18\"}", Policy.STRICT))
        .hasMessageContaining("non-negative integer");
    assertThatThrownBy(() -> Policy.parse("{\"min_tcb_evaluation_data_number\": -1}", Policy.STRICT))
        .hasMessageContaining("non-negative integer");
  }

  /** XFAM and MR_SEAM are "any" unless listed; listed, the quote's values must be among them. */
  @Test
  void xfamAndMrSeamListsAreChecked() throws Exception {
    String q = "dcap-qvl/tdx_quote";
    String c = "dcap-qvl/tdx_quote_collateral.json";
    String at = "2025-07-19T10:00:34Z";
    var td = QuoteParser.parse(Fixtures.quote(q)).td();
    String xfam = String.format("%016x", td.xfam());
    AttestationResult shown = verifyFixture(q, c, at, Policy.MEASUREMENTS_UNCHECKED);
    assertThat(shown.toJson().getJsonObject("measurements").getString("xfam")).isEqualTo(xfam);
    assertThat(shown.toJson().getJsonObject("measurements").getString("mr_seam")).isEqualTo(td.mrSeam().hex());

    Policy pinned = Policy.parse("{\"xfam\": [\"0x" + xfam.toUpperCase() + "\"], \"mr_seam\": [\"" + td.mrSeam().hex() + "\"]}",
        Policy.MEASUREMENTS_UNCHECKED);
    assertThat(verifyFixture(q, c, at, pinned).reasons()).isEmpty();
    Policy others = Policy.parse("{\"xfam\": [\"00000000000000e7\"], \"mr_seam\": [\"" + "ab".repeat(48) + "\"]}",
        Policy.MEASUREMENTS_UNCHECKED);
    assertThat(verifyFixture(q, c, at, others).violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.XFAM_NOT_ALLOWED, PolicyViolation.Reason.MR_SEAM_NOT_ALLOWED);
    assertThatThrownBy(() -> Policy.parse("{\"xfam\": [\"e7\"]}", Policy.STRICT)).hasMessageContaining("8 bytes");
  }

  /** A TD 1.5 (v5, body type 3) quote with zero mr_servicetd, and the quote from Cocoon's own tests. */
  @Test
  void td15QuoteAndCocoonsOwnQuoteThroughTheVerifier() throws Exception {
    AttestationResult v5 = verifyFixture("go-tdx-guest/quote_v5_sample.dat", "dcap-qvl/tdx_quote_outdated_collateral.json",
        "2026-03-01T00:00:00Z", Policy.MEASUREMENTS_UNCHECKED);
    assertThat(v5.status()).contains(TcbStatus.UP_TO_DATE);
    AttestationResult cocoon = verifyFixture("cocoon/quote.dat", "dcap-qvl/tdx_quote_outdated_collateral.json",
        "2026-03-01T00:00:00Z", Policy.MEASUREMENTS_UNCHECKED);
    assertThat(cocoon.status()).contains(TcbStatus.UP_TO_DATE);
    assertThat(v5.accepted()).as(v5.reasons().toString()).isTrue();
    assertThat(QuoteParser.parse(Fixtures.quote("go-tdx-guest/quote_v5_sample.dat")).td().mrServiceTd()).isPresent();
    assertThat(cocoon.imageHash()).contains("04b3afd931d28680af91a15b09d672c40ad6b141f7f9089a8d67d595220f7436");

    // A production-shaped policy that pins only Cocoon's image hash.
    Policy imageOnly = Policy.parse("{\"image_hashes\": [\"04b3afd931d28680af91a15b09d672c40ad6b141f7f9089a8d67d595220f7436\"],"
        + " \"mrtd\": \"any\", \"rtmr0\": \"any\", \"rtmr1\": \"any\", \"rtmr2\": \"any\", \"rtmr3\": \"any\","
        + " \"mr_config_id\": \"any\"}", Policy.STRICT);
    assertThat(verifyFixture("cocoon/quote.dat", "dcap-qvl/tdx_quote_outdated_collateral.json", "2026-03-01T00:00:00Z", imageOnly)
        .reasons()).isEmpty();
    assertThat(verifyFixture("go-tdx-guest/quote_v5_sample.dat", "dcap-qvl/tdx_quote_outdated_collateral.json",
        "2026-03-01T00:00:00Z", imageOnly).violations()).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.IMAGE_HASH_NOT_ALLOWED);
  }

  /** Policy alone (after crypto): a TD 1.5 body whose mr_servicetd is not zero. */
  @Test
  void nonZeroServiceTdNeedsAllowMrServiceTd() throws Exception {
    byte[] q = Fixtures.quote("go-tdx-guest/quote_v5_sample.dat");
    q[54 + 600] = 1; // mr_servicetd[0]; signatures are not the policy's concern
    var quote = QuoteParser.parse(q);
    Evidence e = new Evidence(quote, TeeKind.INTEL_TDX, TcbStatus.UP_TO_DATE, List.of(), Optional.of(ImageHash.of(quote.td())),
        Policy.INTEL_ROOT_KEY_ID, 17, 17);
    assertThat(Policy.MEASUREMENTS_UNCHECKED.check(e, Optional.empty())).extracting(PolicyViolation::reason)
        .containsExactly(PolicyViolation.Reason.MR_SERVICETD_NOT_ALLOWED);
    assertThat(Policy.MEASUREMENTS_UNCHECKED.withAllowMrServiceTd(true).check(e, Optional.empty())).isEmpty();
  }

  @Test
  void imageHashIsSha256OfTheMeasurementsWithZeroReportData() throws Exception {
    byte[] quote = Fixtures.quote("dcap-qvl/tdx_quote");
    var td = QuoteParser.parse(quote).td();
    java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
    int base = 48 + 136; // mr_td .. rtmr3 are contiguous in the TD report: 8 × 48 bytes
    b.write(quote, base, 8 * 48);
    b.write(new byte[64]);
    assertThat(b.size()).isEqualTo(448);
    String expected = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b.toByteArray()));
    assertThat(ImageHash.of(td)).isEqualTo(expected);
  }
}
