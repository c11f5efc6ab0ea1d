package org.cocoonjvm.attest.dcap;

import static org.cocoonjvm.attest.dcap.VerificationException.Reason.PCK_CHAIN_MALFORMED;

import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * FMSPC and PCE-ID from the PCK certificate's SGX extension (OID 1.2.840.113741.1.13.1), the keys
 * for TCB Info lookup. Parsed with a minimal DER reader: the extension is a SEQUENCE of
 * SEQUENCE { OID, value }, and only the two OCTET STRING entries are read here.
 *
 * @param fmspc 6 bytes, lower-case hex
 * @param pceId 2 bytes, lower-case hex
 */
public record PckExtensions(String fmspc, String pceId) {
  public static final String SGX_EXTENSION_OID = "1.2.840.113741.1.13.1";
  /** DER content of OID 1.2.840.113741.1.13.1. */
  private static final byte[] SGX_OID_PREFIX = HexFormat.of().parseHex("2a864886f84d010d01");
  private static final int PCEID_ARC = 3;
  private static final int FMSPC_ARC = 4;
  private static final int TCB_ARC = 2;
  private static final int INTEGER = 0x02;

  private static final int SEQUENCE = 0x30;
  private static final int OCTET_STRING = 0x04;
  private static final int OID = 0x06;

  public static PckExtensions of(X509Certificate pck) throws VerificationException {
    byte[] wrapped = pck.getExtensionValue(SGX_EXTENSION_OID);
    if (wrapped == null) {
      throw malformed("pck leaf has no SGX extension " + SGX_EXTENSION_OID, "extension", "absent");
    }
    Der outer = new Der(wrapped, 0, wrapped.length);
    Der ext = outer.next(OCTET_STRING).contents();
    Der entries = ext.next(SEQUENCE).contents();
    String fmspc = null;
    String pceId = null;
    while (entries.hasMore()) {
      Der entry = entries.next(SEQUENCE).contents();
      Der oid = entry.next(OID);
      int arc = sgxArc(oid);
      if (arc == FMSPC_ARC || arc == PCEID_ARC) {
        Der value = entry.next(OCTET_STRING);
        int expectedLen = arc == FMSPC_ARC ? 6 : 2;
        if (value.len != expectedLen) {
          throw malformed("SGX extension arc " + arc + " length", expectedLen + " bytes", value.len + " bytes");
        }
        String hex = HexFormat.of().formatHex(value.buf, value.off, value.off + value.len);
        if (arc == FMSPC_ARC) fmspc = hex; else pceId = hex;
      }
    }
    if (fmspc == null || pceId == null) {
      throw malformed("SGX extension lacks FMSPC or PCE-ID", "both", "fmspc=" + fmspc + ", pceid=" + pceId);
    }
    return new PckExtensions(fmspc, pceId);
  }

  /**
   * The PCK TCB (arc 2): the 16 SGX component SVNs followed by PCESVN (17 values). CPUSVN
   * (arc 2.18) is skipped; TCB matching uses the components.
   */
  public static int[] tcbComponents(X509Certificate pck) throws VerificationException {
    byte[] wrapped = pck.getExtensionValue(SGX_EXTENSION_OID);
    if (wrapped == null) throw malformed("pck leaf has no SGX extension", "extension", "absent");
    Der entries = new Der(wrapped, 0, wrapped.length).next(OCTET_STRING).contents().next(SEQUENCE).contents();
    int[] out = new int[17];
    boolean[] seen = new boolean[17];
    while (entries.hasMore()) {
      Der entry = entries.next(SEQUENCE).contents();
      if (sgxArc(entry.next(OID)) != TCB_ARC) continue;
      Der comps = entry.next(SEQUENCE).contents();
      while (comps.hasMore()) {
        Der c = comps.next(SEQUENCE).contents();
        Der oid = c.next(OID);
        int n = oid.buf[oid.off + oid.len - 1] & 0xff;
        if (oid.len != SGX_OID_PREFIX.length + 2 || n < 1 || n > 17) continue;
        Der v = c.next(INTEGER);
        int value = 0;
        for (int i = 0; i < v.len; i++) value = (value << 8) | (v.buf[v.off + i] & 0xff);
        out[n - 1] = value;
        seen[n - 1] = true;
      }
    }
    for (int i = 0; i < 17; i++) {
      if (!seen[i]) throw malformed("SGX extension TCB component missing", "17 components", "missing " + (i + 1));
    }
    return out;
  }

  /** The arc after 1.2.840.113741.1.13.1 for a one-arc-deeper OID, or -1. */
  private static int sgxArc(Der oid) {
    if (oid.len != SGX_OID_PREFIX.length + 1) return -1;
    if (!Arrays.equals(oid.buf, oid.off, oid.off + SGX_OID_PREFIX.length, SGX_OID_PREFIX, 0, SGX_OID_PREFIX.length)) {
      return -1;
    }
    return oid.buf[oid.off + SGX_OID_PREFIX.length] & 0xff;
  }

  private static VerificationException malformed(String detail, String expected, String actual) {
    return new VerificationException(PCK_CHAIN_MALFORMED, detail, expected, actual);
  }

  /** A cursor over DER TLVs in buf[off, end), or one TLV's contents. Definite lengths only. */
  private static final class Der {
    final byte[] buf;
    final int off;
    final int len;
    private int pos;

    Der(byte[] buf, int off, int len) {
      this.buf = buf;
      this.off = off;
      this.len = len;
      this.pos = off;
    }

    boolean hasMore() {
      return pos < off + len;
    }

    Der contents() {
      return new Der(buf, off, len);
    }

    /** Reads the next TLV, which must carry {@code tag}; returns a view of its contents. */
    Der next(int tag) throws VerificationException {
      int end = off + len;
      if (pos + 2 > end) throw malformed("SGX extension DER truncated", "tag " + tag, "end");
      int t = buf[pos++] & 0xff;
      if (t != tag) throw malformed("SGX extension DER tag", "0x" + Integer.toHexString(tag), "0x" + Integer.toHexString(t));
      int l = buf[pos++] & 0xff;
      if (l >= 0x80) {
        int n = l & 0x7f;
        if (n == 0 || n > 3 || pos + n > end) throw malformed("SGX extension DER length", "definite", "0x" + Integer.toHexString(l));
        l = 0;
        for (int i = 0; i < n; i++) l = (l << 8) | (buf[pos++] & 0xff);
      }
      if (l > end - pos) throw malformed("SGX extension DER length", "<= " + (end - pos), Integer.toString(l));
      Der d = new Der(buf, pos, l);
      pos += l;
      return d;
    }
  }
}
