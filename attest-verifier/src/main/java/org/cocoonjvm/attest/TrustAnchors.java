package org.cocoonjvm.attest;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.math.BigInteger;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * The roots a verifier pins, by key: Intel's SGX Root CA (hardware) and, where configured, the
 * development TEE's root. A quote's PCK chain picks one by its root key; a root that is neither
 * fails with {@code root_not_pinned}.
 */
public final class TrustAnchors {
  static final String INTEL_ROOT_RESOURCE = "intel-sgx-root-ca.der";
  static final String INTEL_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

  private final X509Certificate intel;
  private final List<X509Certificate> dev;

  private TrustAnchors(X509Certificate intel, List<X509Certificate> dev) {
    this.intel = intel;
    this.dev = List.copyOf(dev);
  }

  /** Intel's root only: what production uses. */
  public static TrustAnchors intel() {
    return new TrustAnchors(loadIntelRoot(), List.of());
  }

  /** Intel's root plus development roots; dev quotes still pass only where the policy allows the dev TEE. */
  public TrustAnchors withDevRoots(List<X509Certificate> devRoots) {
    return new TrustAnchors(intel, devRoots);
  }

  public X509Certificate intelRoot() {
    return intel;
  }

  /** The dev root whose key equals {@code key}, if any. */
  Optional<X509Certificate> devRootWithKey(PublicKey key) {
    return dev.stream().filter(c -> MessageDigest.isEqual(c.getPublicKey().getEncoded(), key.getEncoded())).findFirst();
  }

  /** The bundled Intel SGX Root CA, checked against its known SHA-256. */
  public static X509Certificate loadIntelRoot() {
    try (InputStream in = TrustAnchors.class.getResourceAsStream(INTEL_ROOT_RESOURCE)) {
      if (in == null) throw new IllegalStateException("missing resource " + INTEL_ROOT_RESOURCE);
      byte[] der = in.readAllBytes();
      String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(der));
      if (!sha.equals(INTEL_ROOT_SHA256)) throw new IllegalStateException("bundled Intel root hash mismatch: " + sha);
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
    } catch (Exception e) {
      throw new IllegalStateException("cannot load the bundled Intel SGX Root CA", e);
    }
  }

  /** SHA-384(04‖X‖Y) of a P-256 key, lower-case hex: QVL's {@code root_key_id}, Cocoon's collateral root hash. */
  public static String rootKeyId(PublicKey key) {
    if (!(key instanceof ECPublicKey ec)) throw new IllegalArgumentException("root key is not EC: " + key.getAlgorithm());
    byte[] point = new byte[65];
    point[0] = 4;
    put32(ec.getW().getAffineX(), point, 1);
    put32(ec.getW().getAffineY(), point, 33);
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-384").digest(point));
    } catch (Exception e) {
      throw new IllegalStateException("SHA-384 unavailable", e);
    }
  }

  private static void put32(BigInteger v, byte[] out, int off) {
    byte[] b = v.toByteArray();
    int n = Math.min(b.length, 32);
    System.arraycopy(b, b.length - n, out, off + 32 - n, n);
  }
}
