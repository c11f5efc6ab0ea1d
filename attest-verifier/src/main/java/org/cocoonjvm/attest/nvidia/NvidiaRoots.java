package org.cocoonjvm.attest.nvidia;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.HexFormat;

/**
 * The two NVIDIA roots this module pins, loaded from resources and checked against their known
 * SHA-256 (provenance in the resource directory's README.md).
 */
public final class NvidiaRoots {
  static final String DEVICE_RESOURCE = "nvidia-device-identity-ca.pem";
  static final String DEVICE_SHA256 =
      "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48";
  static final String RIM_RESOURCE = "nvidia-corim-signing-root-ca.pem";
  static final String RIM_SHA256 =
      "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1";

  private NvidiaRoots() {}

  /** NVIDIA Device Identity CA: root of every GPU's device certificate chain. */
  public static X509Certificate deviceIdentityCa() {
    return load(DEVICE_RESOURCE, DEVICE_SHA256);
  }

  /** NVIDIA CoRIM signing Root CA: root of the RIM (reference value) signing chain. */
  public static X509Certificate corimSigningRootCa() {
    return load(RIM_RESOURCE, RIM_SHA256);
  }

  private static X509Certificate load(String resource, String sha256) {
    try (InputStream in = NvidiaRoots.class.getResourceAsStream(resource)) {
      if (in == null) throw new IllegalStateException("missing resource " + resource);
      X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificate(new ByteArrayInputStream(in.readAllBytes()));
      String actual = HexFormat.of()
          .formatHex(MessageDigest.getInstance("SHA-256").digest(cert.getEncoded()));
      if (!actual.equals(sha256)) {
        throw new IllegalStateException(resource + " hash mismatch: expected " + sha256
            + ", got " + actual);
      }
      return cert;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot load pinned root " + resource, e);
    }
  }
}
