package org.cocoonjvm.attest.quote;

import java.util.List;
import java.util.Optional;

/**
 * TDX TD report body, 584 bytes (TD 1.0) or 648 bytes (TD 1.5). Measurements are 48-byte SHA-384
 * values; attribute words are little-endian on the wire and exposed as {@code long}.
 *
 * @param teeTcbSvn 16 bytes: [0] module ISVSVN, [1] module major version, [2] late microcode SVN
 * @param rtmrs exactly four runtime measurement registers, RTMR0..RTMR3
 * @param teeTcbSvn2 TD 1.5 only
 * @param mrServiceTd TD 1.5 only
 */
public record TdReportBody(
    BodyType type,
    Blob teeTcbSvn,
    Blob mrSeam,
    Blob mrSignerSeam,
    long seamAttributes,
    long tdAttributes,
    long xfam,
    Blob mrTd,
    Blob mrConfigId,
    Blob mrOwner,
    Blob mrOwnerConfig,
    List<Blob> rtmrs,
    Blob reportData,
    Optional<Blob> teeTcbSvn2,
    Optional<Blob> mrServiceTd)
    implements ReportBody {

  /** td_attributes bit 0: the TD is debuggable, so its secrets are not protected. */
  public static final long TD_ATTR_DEBUG = 1L;
  /** td_attributes bit 28: EPT violations are not reflected into the TD as #VE. */
  public static final long TD_ATTR_SEPT_VE_DISABLE = 1L << 28;

  public TdReportBody {
    rtmrs = List.copyOf(rtmrs);
    if (rtmrs.size() != 4) throw new IllegalArgumentException("a TD report has 4 RTMRs");
  }

  public Blob rtmr(int index) {
    return rtmrs.get(index);
  }

  public String mrTdHex() {
    return mrTd.hex();
  }

  public String rtmrHex(int index) {
    return rtmrs.get(index).hex();
  }

  public String reportDataHex() {
    return reportData.hex();
  }

  public boolean debug() {
    return (tdAttributes & TD_ATTR_DEBUG) != 0;
  }
}
