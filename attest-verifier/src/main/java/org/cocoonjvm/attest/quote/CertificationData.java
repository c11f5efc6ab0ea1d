package org.cocoonjvm.attest.quote;

import java.nio.charset.StandardCharsets;

/**
 * The innermost certification data: how the verifier finds the PCK certificate.
 *
 * @param type 1..5 per Intel's layout; only {@link #TYPE_PCK_CERT_CHAIN} is self-contained
 */
public record CertificationData(int type, Blob data) {
  public static final int TYPE_PCK_CERT_CHAIN = 5;
  public static final int TYPE_QE_REPORT = 6;

  /**
   * The PEM chain (leaf, intermediate, root) as text. Quote generators usually NUL-terminate it;
   * trailing NULs are dropped here so certificate parsers see plain PEM.
   *
   * @throws IllegalStateException if this is not type 5
   */
  public String pemChain() {
    if (type != TYPE_PCK_CERT_CHAIN) {
      throw new IllegalStateException("certification data type " + type + " is not a PEM chain");
    }
    byte[] b = data.toByteArray();
    int end = b.length;
    while (end > 0 && b[end - 1] == 0) end--;
    return new String(b, 0, end, StandardCharsets.US_ASCII);
  }
}
