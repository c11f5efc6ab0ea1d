package org.cocoonjvm.attest.dcap;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import org.cocoonjvm.attest.quote.Fixtures;

/** The parser tests' {@link Fixtures}, plus the certificates the DCAP tests need. */
final class DcapFixtures {
  private DcapFixtures() {}

  static Path dir() {
    return Fixtures.dir();
  }

  static byte[] quote(String relative) {
    return Fixtures.quote(relative);
  }

  /** Intel SGX Root CA as shipped by dcap-qvl (DER). */
  static X509Certificate intelRoot() {
    return cert("dcap-qvl/TrustedRootCA.der");
  }

  static X509Certificate cert(String relative) {
    Path file = dir().resolve(relative);  // outside the try: a missing fixtures directory skips the test
    try (var in = Files.newInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    } catch (IOException | CertificateException e) {
      throw new IllegalStateException("cannot read certificate " + relative, e);
    }
  }
}
