package org.cocoonjvm.attest.dcap;

import static org.cocoonjvm.attest.dcap.VerificationException.Reason.QE_IDENTITY_MISMATCH;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.QE_ISVSVN_NOT_SUPPORTED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.TCB_NOT_SUPPORTED;
import static org.cocoonjvm.attest.dcap.VerificationException.Reason.TDX_MODULE_MISMATCH;

import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeSet;
import org.cocoonjvm.attest.quote.Blob;
import org.cocoonjvm.attest.quote.EnclaveReportBody;
import org.cocoonjvm.attest.quote.TdReportBody;

/**
 * Matches a verified quote against its verified collateral (reference §2.3 steps 7, 10, 12):
 * QE Identity, platform TCB level (PCK components, PCESVN, and for TDX the TEE_TCB_SVN), TDX
 * module identity, then Intel's status convergence. Pure: no clock, no I/O.
 */
public final class TcbMatcher {
  private static final HexFormat HEX = HexFormat.of();
  /** Descending by (sgx[16], pcesvn, tdx[16]). */
  private static final Comparator<TcbInfo.Level> DESCENDING =
      Comparator.<TcbInfo.Level, int[]>comparing(TcbInfo.Level::sgx, Arrays::compare)
          .thenComparingInt(TcbInfo.Level::pceSvn)
          .thenComparing(TcbInfo.Level::tdx, Arrays::compare)
          .reversed();

  private TcbMatcher() {}

  public static TcbVerdict match(VerifiedCollateral vc) throws VerificationException {
    VerifiedSignatures sigs = vc.signatures();
    TcbInfo.IsvLevel qe = matchQe(vc.qeIdentity(), sigs.quote().signature().qeReport());
    int[] pck = PckExtensions.tcbComponents(sigs.pckLeaf());
    TdReportBody td = sigs.quote().isTdx() ? sigs.quote().td() : null;
    TcbInfo.Level platform = matchPlatform(vc.tcbInfo(), pck, td);

    TreeSet<String> advisories = new TreeSet<>(platform.advisories());
    TcbStatus status = platform.status();
    if (td != null && (td.teeTcbSvn().byteAt(1) & 0xff) > 0) {
      TcbInfo.IsvLevel module = matchModule(vc.tcbInfo(), td);
      status = status.convergeWith(module.status());
      advisories.addAll(module.advisories());
      if (td.teeTcbSvn2().isPresent() && module.status() == TcbStatus.OUT_OF_DATE
          && qe.status() != TcbStatus.OUT_OF_DATE && qe.status() != TcbStatus.REVOKED) {
        status = relaunchCheck(vc.tcbInfo(), sgxLevel(vc.tcbInfo(), pck).status(), status,
            td.teeTcbSvn2().get());
      }
    } else if (td != null) {
      checkModuleIdentity(vc.tcbInfo().tdxModule().orElseThrow(() -> new VerificationException(
          TDX_MODULE_MISMATCH, "TCB Info has no tdxModule", "tdxModule", "absent")), td);
    }
    status = status.convergeWith(qe.status());
    advisories.addAll(qe.advisories());
    return new TcbVerdict(status, List.copyOf(advisories), platform.status(), qe.status());
  }

  static TcbInfo.IsvLevel matchQe(QeIdentity id, EnclaveReportBody qe) throws VerificationException {
    byte[] misc = new byte[4];
    for (int i = 0; i < 4; i++) misc[i] = (byte) (qe.miscSelect() >>> (8 * i));
    checkMasked("MISCSELECT", misc, id.miscSelectMask(), id.miscSelect());
    checkMasked("ATTRIBUTES", qe.attributes().toByteArray(), id.attributesMask(), id.attributes());
    if (!qe.mrSigner().contentEquals(id.mrSigner())) {
      throw new VerificationException(QE_IDENTITY_MISMATCH, "QE MRSIGNER", HEX.formatHex(id.mrSigner()), qe.mrSigner().hex());
    }
    if (qe.isvProdId() != id.isvProdId()) {
      throw new VerificationException(QE_IDENTITY_MISMATCH, "QE ISVPRODID", Integer.toString(id.isvProdId()), Integer.toString(qe.isvProdId()));
    }
    return firstIsvLevel(id.levels(), qe.isvSvn(), QE_ISVSVN_NOT_SUPPORTED, "QE ISVSVN");
  }

  static TcbInfo.Level matchPlatform(TcbInfo info, int[] pck, TdReportBody td) throws VerificationException {
    List<TcbInfo.Level> levels = info.levels().stream().sorted(DESCENDING).toList();
    boolean sgxMatched = false;
    for (TcbInfo.Level l : levels) {
      if (!sgxOk(l, pck)) continue;
      sgxMatched = true;
      if (td == null || tdxOk(l, td)) return l;
    }
    String which = sgxMatched ? "TDX" : "SGX";
    throw new VerificationException(TCB_NOT_SUPPORTED, "no " + which + " TCB level matched",
        "a level <= the platform", "pck " + Arrays.toString(pck) + (td == null ? "" : ", tee_tcb_svn " + td.teeTcbSvn().hex()));
  }

  /** The first level, descending, that the PCK's SGX components and PCESVN meet. */
  private static TcbInfo.Level sgxLevel(TcbInfo info, int[] pck) {
    return info.levels().stream().sorted(DESCENDING).filter(l -> sgxOk(l, pck)).findFirst()
        .orElseThrow(() -> new IllegalStateException("called after a platform level matched"));
  }

  /**
   * Intel QVL TDRelaunchCheck (reference §2.3 step 12), for a TD 1.5 whose launch-time module
   * (TEE_TCB_SVN) is OutOfDate: when the SGX level is not out of date, the converged status is
   * OutOfDate[ConfigurationNeeded], and TEE_TCB_SVN2 (the module it runs on now) meets the latest
   * module level and the latest platform level's late-microcode component [2], a relaunch would
   * bring the TD up to date. Otherwise the status stands.
   */
  static TcbStatus relaunchCheck(TcbInfo info, TcbStatus sgx, TcbStatus converged, Blob teeTcbSvn2)
      throws VerificationException {
    boolean sgxCurrent = switch (sgx) {
      case UP_TO_DATE, SW_HARDENING_NEEDED, CONFIGURATION_NEEDED, CONFIGURATION_AND_SW_HARDENING_NEEDED -> true;
      default -> false;
    };
    if (!sgxCurrent || (converged != TcbStatus.OUT_OF_DATE && converged != TcbStatus.OUT_OF_DATE_CONFIGURATION_NEEDED)) {
      return converged;
    }
    TcbInfo.Level latest = info.levels().stream().sorted(DESCENDING).findFirst()
        .orElseThrow(() -> new VerificationException(TCB_NOT_SUPPORTED, "TCB Info has no levels", "a level", "none"));
    int moduleVersion = teeTcbSvn2.byteAt(1) & 0xff;
    int latestModuleSvn;
    if (moduleVersion == 0) {
      latestModuleSvn = latest.tdx()[0];
    } else {
      String id = String.format("TDX_%02X", moduleVersion);
      TcbInfo.ModuleIdentity m = info.tdxModuleIdentities().stream().filter(x -> x.id().equals(id)).findFirst()
          .orElseThrow(() -> new VerificationException(TDX_MODULE_MISMATCH, "TDX module identity of TEE_TCB_SVN2", id, "absent from TCB Info"));
      latestModuleSvn = m.levels().stream().mapToInt(TcbInfo.IsvLevel::isvSvn).max()
          .orElseThrow(() -> new VerificationException(TCB_NOT_SUPPORTED, "TDX module " + id + " has no levels", "a level", "none"));
    }
    boolean current = (teeTcbSvn2.byteAt(0) & 0xff) >= latestModuleSvn
        && (teeTcbSvn2.byteAt(2) & 0xff) >= latest.tdx()[2];
    if (!current) return converged;
    return sgx.needsConfiguration() || converged.needsConfiguration()
        ? TcbStatus.TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED : TcbStatus.TD_RELAUNCH_ADVISED;
  }

  private static boolean sgxOk(TcbInfo.Level l, int[] pck) {
    for (int i = 0; i < 16; i++) if (pck[i] < l.sgx()[i]) return false;
    return pck[16] >= l.pceSvn();
  }

  /** Intel: with a module major version (TEE_TCB_SVN[1] > 0) the first two bytes are the module's, compared separately. */
  private static boolean tdxOk(TcbInfo.Level l, TdReportBody td) {
    if (l.tdx().length != 16) return false;
    int start = (td.teeTcbSvn().byteAt(1) & 0xff) > 0 ? 2 : 0;
    for (int i = start; i < 16; i++) if ((td.teeTcbSvn().byteAt(i) & 0xff) < l.tdx()[i]) return false;
    return true;
  }

  static TcbInfo.IsvLevel matchModule(TcbInfo info, TdReportBody td) throws VerificationException {
    String id = String.format("TDX_%02X", td.teeTcbSvn().byteAt(1) & 0xff);
    TcbInfo.ModuleIdentity m = info.tdxModuleIdentities().stream().filter(x -> x.id().equals(id)).findFirst()
        .orElseThrow(() -> new VerificationException(TDX_MODULE_MISMATCH, "TDX module identity", id, "absent from TCB Info"));
    checkModuleIdentity(m, td);
    return firstIsvLevel(m.levels(), td.teeTcbSvn().byteAt(0) & 0xff, TCB_NOT_SUPPORTED, "TDX module " + id + " ISVSVN");
  }

  private static void checkModuleIdentity(TcbInfo.ModuleIdentity m, TdReportBody td) throws VerificationException {
    if (!td.mrSignerSeam().contentEquals(m.mrSigner())) {
      throw new VerificationException(TDX_MODULE_MISMATCH, "MRSIGNERSEAM", HEX.formatHex(m.mrSigner()), td.mrSignerSeam().hex());
    }
    byte[] attrs = new byte[8];
    for (int i = 0; i < 8; i++) attrs[i] = (byte) (td.seamAttributes() >>> (8 * i));
    if (td.seamAttributes() != 0) {
      throw new VerificationException(TDX_MODULE_MISMATCH, "SEAMATTRIBUTES", "0", HEX.formatHex(attrs));
    }
    for (int i = 0; i < attrs.length && i < m.attributes().length; i++) {
      if ((attrs[i] & m.attributesMask()[i]) != m.attributes()[i]) {
        throw new VerificationException(TDX_MODULE_MISMATCH, "SEAMATTRIBUTES", HEX.formatHex(m.attributes()), HEX.formatHex(attrs));
      }
    }
  }

  private static TcbInfo.IsvLevel firstIsvLevel(List<TcbInfo.IsvLevel> levels, int svn, VerificationException.Reason r, String what)
      throws VerificationException {
    return levels.stream().sorted(Comparator.comparingInt(TcbInfo.IsvLevel::isvSvn).reversed())
        .filter(l -> l.isvSvn() <= svn).findFirst()
        .orElseThrow(() -> new VerificationException(r, what + " below every level", "a level <= " + svn, "none"));
  }

  private static void checkMasked(String what, byte[] actual, byte[] mask, byte[] expected) throws VerificationException {
    if (actual.length != mask.length || mask.length != expected.length) {
      throw new VerificationException(QE_IDENTITY_MISMATCH, what + " length", expected.length + " bytes", actual.length + " bytes");
    }
    byte[] masked = new byte[actual.length];
    for (int i = 0; i < actual.length; i++) masked[i] = (byte) (actual[i] & mask[i]);
    if (!MessageDigest.isEqual(masked, expected)) {
      throw new VerificationException(QE_IDENTITY_MISMATCH, "masked QE " + what, HEX.formatHex(expected), HEX.formatHex(masked));
    }
  }
}
