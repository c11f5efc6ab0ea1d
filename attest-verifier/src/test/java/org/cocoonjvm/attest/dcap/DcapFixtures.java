package org.cocoonjvm.attest.dcap;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.HexFormat;

/** Reads the shared attestation fixtures; tests are skipped where the checkout lacks them. */
final class DcapFixtures {
  private DcapFixtures() {}

  static Path dir() {
    for (String candidate :
        new String[] {"../../shared/attestation-fixtures", "../shared/attestation-fixtures"}) {
      Path p = Path.of(candidate);
      if (Files.isDirectory(p)) return p;
    }
    assumeTrue(false, "shared/attestation-fixtures not found; skipping fixture tests");
    throw new AssertionError("unreachable");
  }

  static byte[] quote(String relative) {
    try {
      byte[] raw = Files.readAllBytes(dir().resolve(relative));
      if (relative.endsWith(".hex") || relative.endsWith("_hex.txt")) {
        String text = new String(raw, StandardCharsets.US_ASCII).strip();
        if (text.startsWith("0x")) text = text.substring(2);
        return HexFormat.of().parseHex(text);
      }
      return raw;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Intel SGX Root CA as shipped by dcap-qvl (DER). */
  static X509Certificate intelRoot() {
    return cert("dcap-qvl/TrustedRootCA.der");
  }

  static X509Certificate cert(String relative) {
    try (var in = Files.newInputStream(dir().resolve(relative))) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    } catch (Exception e) {
      throw new IllegalStateException("cannot read certificate " + relative, e);
    }
  }
}
