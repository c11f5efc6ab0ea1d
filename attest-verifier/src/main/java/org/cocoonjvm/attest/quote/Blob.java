package org.cocoonjvm.attest.quote;

import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * A read-only view of a range of the parser's private copy of the quote.
 *
 * <p>Fields are views rather than copies so that parsing a 5 KB quote allocates one array plus a
 * small object per field. The backing array never escapes: callers get copies via
 * {@link #toByteArray()}, so a parsed {@link Quote} is immutable.
 */
public final class Blob {
  private static final HexFormat HEX = HexFormat.of();

  private final byte[] buf;
  private final int off;
  private final int len;

  Blob(byte[] buf, int off, int len) {
    this.buf = buf;
    this.off = off;
    this.len = len;
  }

  /** Wraps a copy of {@code bytes}; for tests and callers that build expected values. */
  public static Blob copyOf(byte[] bytes) {
    return new Blob(bytes.clone(), 0, bytes.length);
  }

  public int length() {
    return len;
  }

  public byte byteAt(int i) {
    if (i < 0 || i >= len) throw new IndexOutOfBoundsException(i);
    return buf[off + i];
  }

  public byte[] toByteArray() {
    return Arrays.copyOfRange(buf, off, off + len);
  }

  /** Lower-case hex, the form allow-lists and fixtures use. */
  public String hex() {
    return HEX.formatHex(buf, off, off + len);
  }

  public boolean isAllZero() {
    for (int i = off; i < off + len; i++) if (buf[i] != 0) return false;
    return true;
  }

  /** Feeds the bytes to a digest without copying; the verifier hashes the signed ranges. */
  public void updateDigest(MessageDigest digest) {
    digest.update(buf, off, len);
  }

  /** Constant-time content comparison: measurements are compared against allow-lists. */
  public boolean contentEquals(byte[] other) {
    return MessageDigest.isEqual(toByteArray(), other);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Blob b && Arrays.equals(buf, off, off + len, b.buf, b.off, b.off + b.len);
  }

  @Override
  public int hashCode() {
    int h = 1;
    for (int i = off; i < off + len; i++) h = 31 * h + buf[i];
    return h;
  }

  @Override
  public String toString() {
    return len <= 64 ? hex() : hex().substring(0, 64) + "…(" + len + " bytes)";
  }
}
