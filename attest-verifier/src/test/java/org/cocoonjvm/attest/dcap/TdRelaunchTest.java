package org.cocoonjvm.attest.dcap;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import org.junit.jupiter.api.Test;

/**
 * TDRelaunchAdvised (reference §2.3 step 12) on go-tdx-guest's TD 1.5 sample quote: TEE_TCB_SVN
 * 0b0104… (module TDX_01 ISVSVN 11 at launch), TEE_TCB_SVN2 0d0104… (ISVSVN 13 now). No fixture
 * has a relaunch case, so the real, verified collateral's TCB Info is re-parsed with edited module
 * levels: matching is pure and runs after the signature checks, which these edits would break.
 */
class TdRelaunchTest {
  static final String QUOTE = "go-tdx-guest/quote_v5_sample.dat";
  static final String COLLATERAL = "dcap-qvl/tdx_quote_outdated_collateral.json";
  static final Instant NOW = Instant.parse("2026-03-01T00:00:00Z");
  /** TDX_01's levels in the real TCB Info: 6 UpToDate, 4 and 2 OutOfDate. */
  static final String REAL_TDX01_LEVELS = "{\"tcb\":{\"isvsvn\":6},\"tcbDate\":\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}";

  static TcbVerdict matchWithModuleLevels(String quote, int upToDateSvn, String platformStatus) throws Exception {
    VerifiedCollateral real = verified(quote);
    String text = CollateralCasesTest.collateral(COLLATERAL).tcbInfoJson();
    assertThat(text).contains(REAL_TDX01_LEVELS);
    String edited = text.replace(REAL_TDX01_LEVELS,
        "{\"tcb\":{\"isvsvn\":" + upToDateSvn + "},\"tcbDate\":\"2025-11-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}");
    if (platformStatus != null) {
      // The top platform level: the first status after the platform tcbLevels array opens.
      int top = edited.indexOf("\"tcbStatus\":\"UpToDate\"", edited.indexOf("\"tcbLevels\":[{\"tcb\":{\"sgxtcbcomponents\""));
      edited = edited.substring(0, top) + "\"tcbStatus\":\"" + platformStatus + "\""
          + edited.substring(top + "\"tcbStatus\":\"UpToDate\"".length());
    }
    return TcbMatcher.match(new VerifiedCollateral(real.signatures(), TcbInfo.parse(edited), real.qeIdentity()));
  }

  static VerifiedCollateral verified(String quote) throws Exception {
    var clock = java.time.Clock.fixed(NOW, java.time.ZoneOffset.UTC);
    var root = DcapFixtures.intelRoot();
    VerifiedSignatures sigs = QuoteSignatureVerifier.create(root, clock)
        .verify(org.cocoonjvm.attest.quote.QuoteParser.parse(DcapFixtures.quote(quote)));
    return CollateralVerifier.create(root.getPublicKey(), clock).verify(CollateralCasesTest.collateral(COLLATERAL), sigs);
  }

  @Test
  void realCollateral_isUpToDate() throws Exception {
    assertThat(TcbMatcher.match(verified(QUOTE)).status()).isEqualTo(TcbStatus.UP_TO_DATE);
  }

  @Test
  void launchedUnderAnOutOfDateModule_runningACurrentOne_isAdvisedToRelaunch() throws Exception {
    TcbVerdict v = matchWithModuleLevels(QUOTE, 13, null);
    assertThat(v.status()).isEqualTo(TcbStatus.TD_RELAUNCH_ADVISED);
    assertThat(v.status().jsonName()).isEqualTo("TDRelaunchAdvised");
  }

  @Test
  void currentModuleStillBelowTheLatestLevel_staysOutOfDate() throws Exception {
    assertThat(matchWithModuleLevels(QUOTE, 14, null).status()).isEqualTo(TcbStatus.OUT_OF_DATE);
  }

  @Test
  void platformNeedingConfiguration_isAdvisedToRelaunchWithConfiguration() throws Exception {
    TcbVerdict v = matchWithModuleLevels(QUOTE, 13, "ConfigurationNeeded");
    assertThat(v.platform()).isEqualTo(TcbStatus.CONFIGURATION_NEEDED);
    assertThat(v.status()).isEqualTo(TcbStatus.TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED);
  }

  @Test
  void td10Quote_hasNoSvn2_andStaysOutOfDate() throws Exception {
    // cocoon/quote.dat: v4, same FMSPC and collateral, module TDX_01.
    VerifiedCollateral real = verified("cocoon/quote.dat");
    assertThat(real.signatures().quote().td().teeTcbSvn2()).isEmpty();
    int launchSvn = real.signatures().quote().td().teeTcbSvn().byteAt(0) & 0xff;
    assertThat(matchWithModuleLevels("cocoon/quote.dat", launchSvn + 1, null).status()).isEqualTo(TcbStatus.OUT_OF_DATE);
  }

  @Test
  void derivedStatuses_neverComeFromCollateralJson() {
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> TcbStatus.fromJson("TDRelaunchAdvised"))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
