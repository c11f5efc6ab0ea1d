package org.cocoonjvm.attest.ratls;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.Base64;
import java.util.Date;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Optional;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.cocoonjvm.attest.tee.QuoteSource;
import org.cocoonjvm.attest.tee.QuoteSourceException;

/**
 * This node's RA-TLS key and certificate, in Cocoon's format (reference §4): self-signed X.509v3
 * with an Ed25519 key, valid one day by default, critical extension {@link #QUOTE_OID} = the raw
 * TDX quote and critical {@link #CLAIMS_OID} = the claims, which are the raw 32-byte public key;
 * the quote's report_data is SHA-512(claims). Optionally non-critical {@link #GPU_EVIDENCE_OID}
 * with GPU evidence and {@link #CONFIG_OID} with the node's configuration ({@link NodeConfig}),
 * which Cocoon peers ignore. Immutable; make a new one before {@link #notAfter()}.
 */
public final class RaTlsIdentity {
  public static final String QUOTE_OID = "1.3.6.1.4.1.12345.1";
  public static final String CLAIMS_OID = "1.3.6.1.4.1.12345.2";
  /** Ours, not Cocoon's: GPU evidence bound to the TLS key (see {@link GpuEvidence}). Non-critical. */
  public static final String GPU_EVIDENCE_OID = "1.3.6.1.4.1.12345.1000";
  /** Ours, not Cocoon's: what the node says of its configuration ({@link NodeConfig}). Non-critical. */
  public static final String CONFIG_OID = "1.3.6.1.4.1.12345.1001";
  public static final Duration DEFAULT_VALIDITY = Duration.ofDays(1);
  /** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key is the 32 bytes after it. */
  static final byte[] ED25519_SPKI_PREFIX = HexFormat.of().parseHex("302a300506032b6570032100");

  private final KeyPair key;
  private final X509Certificate certificate;
  private final byte[] quote;

  private RaTlsIdentity(KeyPair key, X509Certificate certificate, byte[] quote) {
    this.key = key;
    this.certificate = certificate;
    this.quote = quote;
  }

  /**
   * A fresh Ed25519 key, a quote over SHA-512 of it, and the certificate.
   *
   * @param gpuEvidence makes the GPU evidence extension from the raw public key (e.g. SPDM
   *     measurements with nonce {@link org.cocoonjvm.attest.nvidia.GpuNonce#forTlsPublicKey}); {@code null} for none
   * @param config what the node says of its configuration; {@link NodeConfig#NONE} leaves the extension out
   */
  public static RaTlsIdentity create(QuoteSource quotes, Clock clock, Duration validity, GpuEvidence gpuEvidence,
      NodeConfig config) throws QuoteSourceException {
    Objects.requireNonNull(quotes, "quotes");
    KeyPair kp;
    try {
      kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 unavailable", e);
    }
    byte[] claims = rawEd25519(kp.getPublic()).orElseThrow();
    byte[] quote = quotes.quote(sha512(claims));
    Optional<byte[]> gpu;
    try {
      gpu = gpuEvidence == null ? Optional.empty() : gpuEvidence.evidenceFor(claims);
    } catch (IOException e) {
      // A certificate without the evidence the peers require would only be refused by them.
      throw new QuoteSourceException(QuoteSourceException.Reason.IO, "GPU evidence: " + e.getMessage(), e);
    }
    Instant now = clock.instant().truncatedTo(ChronoUnit.SECONDS);
    try {
      X500Name name = new X500Name("CN=cocoon-jvm RA-TLS");
      JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(name, new BigInteger(127, new SecureRandom()),
          Date.from(now), Date.from(now.plus(validity)), name, kp.getPublic());
      b.addExtension(new Extension(new ASN1ObjectIdentifier(QUOTE_OID), true, quote));
      b.addExtension(new Extension(new ASN1ObjectIdentifier(CLAIMS_OID), true, claims));
      if (gpu.isPresent()) b.addExtension(new Extension(new ASN1ObjectIdentifier(GPU_EVIDENCE_OID), false, gpu.get()));
      if (!config.isEmpty()) b.addExtension(new Extension(new ASN1ObjectIdentifier(CONFIG_OID), false, config.encode()));
      X509Certificate cert = new JcaX509CertificateConverter()
          .getCertificate(b.build(new JcaContentSignerBuilder("Ed25519").build(kp.getPrivate())));
      return new RaTlsIdentity(kp, cert, quote);
    } catch (GeneralSecurityException | OperatorCreationException | IOException e) {
      throw new IllegalStateException("cannot build the RA-TLS certificate", e);
    }
  }

  public static RaTlsIdentity create(QuoteSource quotes, Clock clock) throws QuoteSourceException {
    return create(quotes, clock, DEFAULT_VALIDITY, null, NodeConfig.NONE);
  }

  /**
   * Makes the GPU evidence extension value ({@link GpuEvidenceExtension#encode}) for a TLS key,
   * the evidence taken with nonce {@link org.cocoonjvm.attest.nvidia.GpuNonce#forTlsPublicKey}
   * (e.g. {@link CommandGpuEvidence}).
   */
  @FunctionalInterface
  public interface GpuEvidence {
    /** @throws IOException when no evidence can be had; the certificate is then not made */
    Optional<byte[]> evidenceFor(byte[] rawTlsPublicKey) throws IOException;
  }

  public X509Certificate certificate() {
    return certificate;
  }

  public PrivateKey privateKey() {
    return key.getPrivate();
  }

  public byte[] quote() {
    return quote.clone();
  }

  /**
   * What a node publishes about itself (the gateway at {@code GET /v1/attestation}): the
   * certificate (PEM), the raw quote (hex), its validity and report_data, plus {@code tee}, e.g.
   * {@code TDX} or {@code dev (not hardware-backed)}, {@code gpu_evidence} (the extension's JSON) where present,
   * and {@code config} (the node's configuration claims; an empty object for none). Anyone can check it offline with
   * {@code cocoon attest verify --quote … --report-data …}.
   */
  public JsonObject publicEvidence(String tee) {
    try {
      String pem = "-----BEGIN CERTIFICATE-----\n"
          + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(certificate.getEncoded())
          + "\n-----END CERTIFICATE-----\n";
      JsonObject out = new JsonObject().put("tee", tee).put("format", "cocoon-ra-tls")
          .put("certificate_pem", pem).put("quote", HexFormat.of().formatHex(quote))
          .put("report_data", HexFormat.of().formatHex(sha512(rawEd25519(certificate.getPublicKey()).orElseThrow())))
          .put("not_before", certificate.getNotBefore().toInstant().toString()).put("not_after", notAfter().toString());
      byte[] gpu = certificate.getExtensionValue(GPU_EVIDENCE_OID);
      if (gpu != null) {
        out.put("gpu_evidence", new JsonObject(new String(ASN1OctetString.getInstance(gpu).getOctets(), StandardCharsets.UTF_8)));
      }
      byte[] config = certificate.getExtensionValue(CONFIG_OID);
      out.put("config", config == null ? new JsonObject()
          : new JsonObject(new String(ASN1OctetString.getInstance(config).getOctets(), StandardCharsets.UTF_8)));
      return out;
    } catch (java.security.cert.CertificateEncodingException e) {
      throw new IllegalStateException(e);
    }
  }

  public Instant notAfter() {
    return certificate.getNotAfter().toInstant();
  }

  /** The 32-byte Ed25519 key from its X.509 encoding, empty for any other key. */
  static Optional<byte[]> rawEd25519(PublicKey key) {
    byte[] spki = key.getEncoded();
    if (spki == null || spki.length != ED25519_SPKI_PREFIX.length + 32
        || !Arrays.equals(spki, 0, ED25519_SPKI_PREFIX.length, ED25519_SPKI_PREFIX, 0, ED25519_SPKI_PREFIX.length)) {
      return Optional.empty();
    }
    return Optional.of(Arrays.copyOfRange(spki, ED25519_SPKI_PREFIX.length, spki.length));
  }

  static byte[] sha512(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-512").digest(b);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }
}
