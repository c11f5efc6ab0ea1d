package org.cocoonjvm.attest.ratls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.MutableClock;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.ratls.RaTlsException.Reason;
import org.cocoonjvm.attest.tee.DevTee;
import org.junit.jupiter.api.Test;

/** Certificate-level checks, without a handshake. */
class RaTlsVerifierTest {
  static final Instant NOW = Instant.parse("2026-11-22T01:00:00Z");
  static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
  static final DevTee TEE = DevTee.generate(CLOCK);

  static RaTlsVerifier verifier(Clock clock, Duration maxTtl) {
    return new RaTlsVerifier(AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), clock),
        CollateralSource.fixed(TEE.collateral()), Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true), maxTtl,
        RaTlsVerifier.GpuEvidenceCheck.NONE);
  }

  static Reason refusal(X509Certificate... chain) {
    try {
      verifier(CLOCK, Duration.ofHours(1)).verify(chain);
    } catch (RaTlsException e) {
      return e.reason();
    }
    throw new AssertionError("accepted");
  }

  /** A self-signed certificate with the given key and extensions (OID → critical?, value). */
  static X509Certificate cert(KeyPair kp, String sigAlg, Map<String, Map.Entry<Boolean, byte[]>> extensions) throws Exception {
    X500Name name = new X500Name("CN=test");
    JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(name, BigInteger.ONE, Date.from(NOW.minusSeconds(60)),
        Date.from(NOW.plusSeconds(3600)), name, kp.getPublic());
    for (var e : extensions.entrySet()) {
      b.addExtension(new Extension(new ASN1ObjectIdentifier(e.getKey()), e.getValue().getKey(), e.getValue().getValue()));
    }
    return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder(sigAlg).build(kp.getPrivate())));
  }

  static Map<String, Map.Entry<Boolean, byte[]>> raTlsExtensions(KeyPair kp) throws Exception {
    byte[] raw = RaTlsIdentity.rawEd25519(kp.getPublic()).orElseThrow();
    Map<String, Map.Entry<Boolean, byte[]>> m = new LinkedHashMap<>();
    m.put(RaTlsIdentity.QUOTE_OID, Map.entry(true, TEE.quote(RaTlsIdentity.sha512(raw))));
    m.put(RaTlsIdentity.CLAIMS_OID, Map.entry(true, raw));
    return m;
  }

  @Test
  void aHandBuiltCocoonShapedCertificateIsAccepted() throws Exception {
    KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    RaTlsPeer peer = verifier(CLOCK, Duration.ofHours(1)).verify(new X509Certificate[] {cert(kp, "Ed25519", raTlsExtensions(kp))});
    assertThat(peer.publicKey()).isEqualTo(RaTlsIdentity.rawEd25519(kp.getPublic()).orElseThrow());
    assertThat(peer.gpu()).isEmpty();
  }

  @Test
  void structuralRefusals() throws Exception {
    KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    X509Certificate good = cert(kp, "Ed25519", raTlsExtensions(kp));
    assertThat(refusal(good, good)).isEqualTo(Reason.NOT_DEPTH_0);
    assertThat(refusal()).isEqualTo(Reason.NOT_DEPTH_0);

    var unknown = raTlsExtensions(kp);
    unknown.put("1.3.6.1.4.1.12345.7", Map.entry(true, new byte[] {1}));
    assertThat(refusal(cert(kp, "Ed25519", unknown))).isEqualTo(Reason.UNKNOWN_CRITICAL_EXTENSION);

    var nonCriticalQuote = raTlsExtensions(kp);
    nonCriticalQuote.put(RaTlsIdentity.QUOTE_OID, Map.entry(false, nonCriticalQuote.get(RaTlsIdentity.QUOTE_OID).getValue()));
    assertThat(refusal(cert(kp, "Ed25519", nonCriticalQuote))).isEqualTo(Reason.MISSING_EXTENSION);

    KeyPair other = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    var otherClaims = raTlsExtensions(kp);
    otherClaims.put(RaTlsIdentity.CLAIMS_OID, Map.entry(true, RaTlsIdentity.rawEd25519(other.getPublic()).orElseThrow()));
    assertThat(refusal(cert(kp, "Ed25519", otherClaims))).isEqualTo(Reason.CLAIMS_MISMATCH);

    // Signed by another key: not self-signed.
    X509Certificate forged = cert(kp, "Ed25519", raTlsExtensions(kp));
    byte[] der = forged.getEncoded();
    der[der.length - 1] ^= 1;
    X509Certificate broken = (X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
        .generateCertificate(new java.io.ByteArrayInputStream(der));
    assertThat(refusal(broken)).isEqualTo(Reason.NOT_SELF_SIGNED);

    KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
    ec.initialize(256);
    KeyPair p256 = ec.generateKeyPair();
    var ecExt = raTlsExtensions(kp);
    assertThat(refusal(cert(p256, "SHA256withECDSA", ecExt))).isEqualTo(Reason.WRONG_KEY_TYPE);
  }

  @Test
  void publicEvidenceCarriesTheQuoteBoundToTheCertificateKey() throws Exception {
    RaTlsIdentity id = RaTlsIdentity.create(TEE, CLOCK);
    var json = id.publicEvidence("dev (not hardware-backed)");
    byte[] quote = java.util.HexFormat.of().parseHex(json.getString("quote"));
    assertThat(org.cocoonjvm.attest.quote.QuoteParser.parse(quote).reportDataHex()).isEqualTo(json.getString("report_data"));
    X509Certificate parsed = (X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(
        new java.io.ByteArrayInputStream(json.getString("certificate_pem").getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
    assertThat(parsed).isEqualTo(id.certificate());
    assertThat(verifier(CLOCK, Duration.ofHours(1)).verify(new X509Certificate[] {parsed}).attestation().accepted()).isTrue();
  }

  @Test
  void cacheExpiresAtMaxTtlAndReverifies() throws Exception {
    RaTlsIdentity id = RaTlsIdentity.create(TEE, CLOCK);
    X509Certificate[] chain = {id.certificate()};
    MutableClock clock = new MutableClock(NOW);
    RaTlsVerifier v = verifier(clock, Duration.ofMinutes(10));
    assertThat(v.verify(chain).cached()).isFalse();
    clock.set(NOW.plus(Duration.ofMinutes(9)));
    assertThat(v.verify(chain).cached()).isTrue();
    clock.set(NOW.plus(Duration.ofMinutes(11)));
    assertThat(v.verify(chain).cached()).isFalse();
    assertThat(v.cacheHits()).isEqualTo(1);
    assertThat(v.cacheMisses()).isEqualTo(2);
    // Past the certificate's one day: refused before the cache is consulted.
    clock.set(NOW.plus(Duration.ofDays(1)).plusSeconds(1));
    assertThatThrownBy(() -> v.verify(chain)).extracting(e -> ((RaTlsException) e).reason()).isEqualTo(Reason.CERT_EXPIRED);
  }

  /**
   * The audit's case (I-7): a certificate made two years ago and valid for a hundred is current
   * today, yet is refused; the longest validity accepted is the issuing day plus the allowance.
   */
  @Test
  void aCertificateValidForLongerThanTheIssuingDayPlusAnHourIsRefused() throws Exception {
    Clock twoYearsAgo = Clock.fixed(NOW.minus(Duration.ofDays(730)), ZoneOffset.UTC);
    RaTlsIdentity century = RaTlsIdentity.create(TEE, twoYearsAgo, Duration.ofDays(36500), null, NodeConfig.NONE);
    assertThatThrownBy(() -> verifier(CLOCK, Duration.ofHours(1)).verify(new X509Certificate[] {century.certificate()}))
        .extracting(e -> ((RaTlsException) e).reason()).isEqualTo(Reason.CERT_VALIDITY_TOO_LONG);

    Duration bound = RaTlsIdentity.DEFAULT_VALIDITY.plus(Duration.ofHours(1));
    RaTlsIdentity atTheBound = RaTlsIdentity.create(TEE, CLOCK, bound, null, NodeConfig.NONE);
    assertThat(verifier(CLOCK, Duration.ofHours(1)).verify(new X509Certificate[] {atTheBound.certificate()}).attestation()
        .accepted()).isTrue();
    RaTlsIdentity aSecondLonger = RaTlsIdentity.create(TEE, CLOCK, bound.plusSeconds(1), null, NodeConfig.NONE);
    assertThatThrownBy(() -> verifier(CLOCK, Duration.ofHours(1)).verify(new X509Certificate[] {aSecondLonger.certificate()}))
        .extracting(e -> ((RaTlsException) e).reason()).isEqualTo(Reason.CERT_VALIDITY_TOO_LONG);
  }

  @Test
  void gpuEvidenceRidesInANonCriticalExtensionAndGoesThroughTheCheck() throws Exception {
    RaTlsIdentity id = RaTlsIdentity.create(TEE, CLOCK, RaTlsIdentity.DEFAULT_VALIDITY,
        key -> Optional.of(org.cocoonjvm.attest.nvidia.GpuNonce.forTlsPublicKey(key)), NodeConfig.NONE);
    X509Certificate[] chain = {id.certificate()};
    assertThat(id.certificate().getNonCriticalExtensionOIDs()).contains(RaTlsIdentity.GPU_EVIDENCE_OID);
    byte[][] seen = new byte[1][];
    RaTlsVerifier recording = new RaTlsVerifier(
        AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), CLOCK),
        CollateralSource.fixed(TEE.collateral()), Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true), Duration.ofHours(1),
        (key, extension) -> {
          seen[0] = extension.orElseThrow();
          throw new RaTlsException(Reason.GPU_EVIDENCE_REJECTED, "no GPU verifier configured");
        });
    assertThatThrownBy(() -> recording.verify(chain)).extracting(e -> ((RaTlsException) e).reason())
        .isEqualTo(Reason.GPU_EVIDENCE_REJECTED);
    assertThat(seen[0]).isEqualTo(org.cocoonjvm.attest.nvidia.GpuNonce.forTlsPublicKey(
        RaTlsIdentity.rawEd25519(id.certificate().getPublicKey()).orElseThrow()));
  }

  static RaTlsVerifier verifier(Policy policy) {
    return new RaTlsVerifier(AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), CLOCK),
        CollateralSource.fixed(TEE.collateral()), policy, Duration.ofHours(1), RaTlsVerifier.GpuEvidenceCheck.NONE);
  }

  static X509Certificate[] withConfig(NodeConfig config) throws Exception {
    return new X509Certificate[] {RaTlsIdentity.create(TEE, CLOCK, RaTlsIdentity.DEFAULT_VALIDITY, null, config).certificate()};
  }

  /**
   * A node's configuration rides in a non-critical extension, signed with the attested key; a
   * policy's {@code config} accepts only the values it lists, and refuses a peer that claims none.
   */
  @Test
  void configurationClaims_areHeldToThePolicysConfig_andRejectedByDefaultWhenMissing() throws Exception {
    NodeConfig nativeWorker = NodeConfig.of(Map.of("role", "worker", "engine", "native"));
    X509Certificate[] chain = withConfig(nativeWorker);
    assertThat(chain[0].getNonCriticalExtensionOIDs()).contains(RaTlsIdentity.CONFIG_OID);
    Policy base = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);
    assertThat(verifier(base).verify(chain).config()).isEqualTo(nativeWorker);
    assertThat(verifier(base).verify(new X509Certificate[] {RaTlsIdentity.create(TEE, CLOCK).certificate()}).config())
        .isEqualTo(NodeConfig.NONE);

    Policy nativeOnly = Policy.parse("{\"config\": {\"engine\": [\"native\"]}}", base);
    assertThat(verifier(nativeOnly).verify(chain).config().values()).containsEntry("engine", "native");
    assertThatThrownBy(() -> verifier(nativeOnly).verify(withConfig(NodeConfig.of(Map.of("engine", "forward",
            "forward_url", "http://10.0.0.9:8000")))))
        .isInstanceOfSatisfying(RaTlsException.class, e -> {
          assertThat(e.reason()).isEqualTo(Reason.CONFIG_REJECTED);
          assertThat(e.detail()).isEqualTo("the peer's engine is 'forward'; the policy accepts [native]");
        });
    assertThatThrownBy(() -> verifier(nativeOnly).verify(new X509Certificate[] {RaTlsIdentity.create(TEE, CLOCK).certificate()}))
        .isInstanceOfSatisfying(RaTlsException.class, e -> {
          assertThat(e.reason()).isEqualTo(Reason.CONFIG_REJECTED);
          assertThat(e.detail()).isEqualTo("the peer's configuration does not say its engine; the policy accepts [native]");
        });
  }

  @Test
  void aConfigurationExtensionThatIsNotAnObjectOfStrings_isRefused() {
    for (String bad : List.of("[1]", "{\"engine\": 1}", "{\"Engine\": \"native\"}", "not json", "{\"a\": \"" + "x".repeat(5000) + "\"}")) {
      assertThatThrownBy(() -> NodeConfig.parse(bad.getBytes(java.nio.charset.StandardCharsets.UTF_8))).as(bad)
          .isInstanceOfSatisfying(RaTlsException.class, e -> assertThat(e.reason()).isEqualTo(Reason.CONFIG_REJECTED));
    }
    NodeConfig claims = NodeConfig.of(Map.of("role", "gateway", "peer_policy_sha256", "ab".repeat(32)));
    assertThat(uncheckedParse(claims.encode())).isEqualTo(claims);
  }

  private static NodeConfig uncheckedParse(byte[] extension) {
    try {
      return NodeConfig.parse(extension);
    } catch (RaTlsException e) {
      throw new AssertionError(e);
    }
  }
}
