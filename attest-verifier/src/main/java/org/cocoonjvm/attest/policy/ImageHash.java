package org.cocoonjvm.attest.policy;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.cocoonjvm.attest.quote.TdReportBody;

/**
 * Cocoon's image hash ({@code AttestationData::image_hash}): SHA-256 over the 448 bytes
 * {@code mr_td ‖ mr_config_id ‖ mr_owner ‖ mr_owner_config ‖ rtmr0..3 ‖ 64 zero bytes}. The zero
 * bytes stand where report_data would be, so the hash names the image, not the instance.
 */
public final class ImageHash {
  private ImageHash() {}

  /** Lower-case hex of the 32-byte hash. */
  public static String of(TdReportBody td) {
    MessageDigest d = sha256();
    td.mrTd().updateDigest(d);
    td.mrConfigId().updateDigest(d);
    td.mrOwner().updateDigest(d);
    td.mrOwnerConfig().updateDigest(d);
    for (int i = 0; i < 4; i++) td.rtmr(i).updateDigest(d);
    d.update(new byte[64]);
    return HexFormat.of().formatHex(d.digest());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
  }
}
