package org.cocoonjvm.attest.ratls;

import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.ATTESTATION_REJECTED;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.CERT_EXPIRED;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.CERT_NOT_YET_VALID;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.CERT_VALIDITY_TOO_LONG;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.CLAIMS_MISMATCH;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.COLLATERAL_UNAVAILABLE;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.CONFIG_REJECTED;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.MISSING_EXTENSION;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.NOT_DEPTH_0;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.NOT_SELF_SIGNED;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.REPORT_DATA_MISMATCH;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.UNKNOWN_CRITICAL_EXTENSION;
import static org.cocoonjvm.attest.ratls.RaTlsException.Reason.WRONG_KEY_TYPE;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.bouncycastle.asn1.ASN1OctetString;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.quote.Quote;
import org.cocoonjvm.attest.quote.QuoteFormatException;
import org.cocoonjvm.attest.quote.QuoteParser;

/**
 * Verifies a peer's RA-TLS certificate as Cocoon does (reference §4): exactly one self-signed
 * certificate; no unknown critical extensions; an Ed25519 key; claims = that key; valid at the
 * verifier's clock and for no longer than {@link #MAX_CERT_VALIDITY}; the quote verified by {@link AttestationVerifier} with the policy and
 * report_data = SHA-512(key). Accepted attestations are cached by SHA-256(quote) until the
 * earliest of certificate expiry, collateral nextUpdate and {@code maxTtl}; certificate checks run
 * on every call. Thread-safe.
 */
public final class RaTlsVerifier {
  /** Critical extensions a peer certificate may carry: the two RA-TLS ones and the two every X.509 stack knows. */
  private static final Set<String> KNOWN_CRITICAL =
      Set.of(RaTlsIdentity.QUOTE_OID, RaTlsIdentity.CLAIMS_OID, "2.5.29.19", "2.5.29.15");
  private static final int MAX_CACHE_ENTRIES = 4096;
  /**
   * The longest validity a peer certificate may claim: the 1 day nodes issue
   * ({@link RaTlsIdentity#DEFAULT_VALIDITY}) plus an hour's allowance. The quote carries no time, so
   * the certificate's dates are the only age the verifier sees; an unbounded validity would let a
   * certificate made once stand for years.
   */
  public static final Duration MAX_CERT_VALIDITY = RaTlsIdentity.DEFAULT_VALIDITY.plus(Duration.ofHours(1));

  /** Checks the optional GPU evidence extension against the peer's raw TLS key ({@link NvidiaGpuCheck}). */
  @FunctionalInterface
  public interface GpuEvidenceCheck {
    /**
     * @return the verified GPU, or empty when there is no evidence and none is required
     * @throws RaTlsException {@code GPU_EVIDENCE_REJECTED} or {@code GPU_EVIDENCE_MISSING}
     */
    Optional<GpuVerdict> check(byte[] rawTlsPublicKey, Optional<byte[]> extension) throws RaTlsException;

    /** Ignores the extension: for tests of the TDX path alone. */
    GpuEvidenceCheck NONE = (key, extension) -> Optional.empty();
  }

  private record Cached(AttestationResult result, Instant expires) {}

  private final AttestationVerifier verifier;
  private final CollateralSource collateral;
  private final Policy policy;
  private final Duration maxTtl;
  private final GpuEvidenceCheck gpuCheck;
  private final ConcurrentHashMap<String, Cached> cache = new ConcurrentHashMap<>();
  private final AtomicLong hits = new AtomicLong();
  private final AtomicLong misses = new AtomicLong();

  public RaTlsVerifier(AttestationVerifier verifier, CollateralSource collateral, Policy policy, Duration maxTtl,
      GpuEvidenceCheck gpuCheck) {
    this.verifier = Objects.requireNonNull(verifier, "verifier");
    this.collateral = Objects.requireNonNull(collateral, "collateral");
    this.policy = Objects.requireNonNull(policy, "policy");
    this.maxTtl = Objects.requireNonNull(maxTtl, "maxTtl");
    this.gpuCheck = Objects.requireNonNull(gpuCheck, "gpuCheck");
  }

  /** GPU evidence checked by {@link NvidiaGpuCheck} under {@code policy.gpu()} with the pinned NVIDIA roots. */
  public RaTlsVerifier(AttestationVerifier verifier, CollateralSource collateral, Policy policy) {
    this(verifier, collateral, policy, Duration.ofHours(1), NvidiaGpuCheck.pinned(policy.gpu(), verifier.clock()));
  }

  /**
   * The peer of an established session. A resumed TLS 1.3 session carries the original peer
   * certificate but skips the trust manager, so call this on every new connection (a cache hit
   * while the attestation is fresh) to re-check expiry and policy.
   */
  public RaTlsPeer verify(SSLSession session) throws RaTlsException {
    Certificate[] certs;
    try {
      certs = session.getPeerCertificates();
    } catch (SSLPeerUnverifiedException e) {
      throw new RaTlsException(NOT_DEPTH_0, "peer presented no certificate");
    }
    X509Certificate[] chain = new X509Certificate[certs.length];
    for (int i = 0; i < certs.length; i++) {
      if (!(certs[i] instanceof X509Certificate x)) throw new RaTlsException(NOT_DEPTH_0, "peer certificate is not X.509");
      chain[i] = x;
    }
    return verify(chain);
  }

  public RaTlsPeer verify(X509Certificate[] chain) throws RaTlsException {
    if (chain == null || chain.length != 1) {
      throw new RaTlsException(NOT_DEPTH_0, "expected exactly 1 certificate, got " + (chain == null ? 0 : chain.length));
    }
    X509Certificate cert = chain[0];
    Instant now = verifier.clock().instant();
    checkSelfSigned(cert);
    Set<String> critical = cert.getCriticalExtensionOIDs() == null ? Set.of() : cert.getCriticalExtensionOIDs();
    for (String oid : critical) {
      if (!KNOWN_CRITICAL.contains(oid)) throw new RaTlsException(UNKNOWN_CRITICAL_EXTENSION, "critical extension " + oid);
    }
    if (!critical.contains(RaTlsIdentity.QUOTE_OID) || !critical.contains(RaTlsIdentity.CLAIMS_OID)) {
      throw new RaTlsException(MISSING_EXTENSION, "quote " + RaTlsIdentity.QUOTE_OID + " and claims " + RaTlsIdentity.CLAIMS_OID
          + " must both be present and critical");
    }
    byte[] key = RaTlsIdentity.rawEd25519(cert.getPublicKey())
        .orElseThrow(() -> new RaTlsException(WRONG_KEY_TYPE, "key is " + cert.getPublicKey().getAlgorithm() + ", expected Ed25519"));
    byte[] claims = extension(cert, RaTlsIdentity.CLAIMS_OID).orElseThrow();
    if (!MessageDigest.isEqual(claims, key)) {
      throw new RaTlsException(CLAIMS_MISMATCH, "claims " + HexFormat.of().formatHex(claims) + " are not the certificate key "
          + HexFormat.of().formatHex(key));
    }
    if (now.isBefore(cert.getNotBefore().toInstant())) {
      throw new RaTlsException(CERT_NOT_YET_VALID, "notBefore " + cert.getNotBefore().toInstant() + " > now " + now);
    }
    if (now.isAfter(cert.getNotAfter().toInstant())) {
      throw new RaTlsException(CERT_EXPIRED, "notAfter " + cert.getNotAfter().toInstant() + " < now " + now);
    }
    Duration validity = Duration.between(cert.getNotBefore().toInstant(), cert.getNotAfter().toInstant());
    if (validity.compareTo(MAX_CERT_VALIDITY) > 0) {
      throw new RaTlsException(CERT_VALIDITY_TOO_LONG, "valid for " + validity + " (" + cert.getNotBefore().toInstant() + " to "
          + cert.getNotAfter().toInstant() + "), at most " + MAX_CERT_VALIDITY);
    }
    byte[] quoteBytes = extension(cert, RaTlsIdentity.QUOTE_OID).orElseThrow();
    Quote quote = parse(quoteBytes);
    byte[] expectedReportData = RaTlsIdentity.sha512(key);
    // Cheap and before any signature work: the quote must name this certificate's key.
    byte[] reportData = quote.body().reportData().toByteArray();
    if (!MessageDigest.isEqual(reportData, expectedReportData)) {
      throw new RaTlsException(REPORT_DATA_MISMATCH, "quote report_data " + HexFormat.of().formatHex(reportData)
          + " is not SHA-512 of the certificate key");
    }

    String cacheKey = HexFormat.of().formatHex(sha256(quoteBytes));
    Cached hit = cache.get(cacheKey);
    AttestationResult result;
    boolean cached = hit != null && now.isBefore(hit.expires());
    if (cached) {
      hits.incrementAndGet();
      result = hit.result();
    } else {
      misses.incrementAndGet();
      result = attest(quoteBytes, quote, expectedReportData);
      Instant expires = min(cert.getNotAfter().toInstant(), result.collateralNextUpdate().orElse(now), now.plus(maxTtl));
      remember(cacheKey, new Cached(result, expires), now);
    }
    // Not cached with the quote: the nonce binding and device chain are per certificate and cheap next to a TDX quote.
    Optional<GpuVerdict> gpu = gpuCheck.check(key, extension(cert, RaTlsIdentity.GPU_EVIDENCE_OID));
    NodeConfig config = checkConfig(extension(cert, RaTlsIdentity.CONFIG_OID));
    return new RaTlsPeer(cert, key, result, cached, gpu, config);
  }

  /** The peer's configuration claims, held to the policy's {@code config}: every key it names must be claimed, with a value it lists. */
  private NodeConfig checkConfig(Optional<byte[]> extension) throws RaTlsException {
    NodeConfig config = extension.isPresent() ? NodeConfig.parse(extension.get()) : NodeConfig.NONE;
    List<String> violations = policy.config().violations(config.values());
    if (!violations.isEmpty()) throw new RaTlsException(CONFIG_REJECTED, String.join("; ", violations));
    return config;
  }

  private static Quote parse(byte[] quoteBytes) throws RaTlsException {
    try {
      return QuoteParser.parse(quoteBytes);
    } catch (QuoteFormatException e) {
      throw new RaTlsException(ATTESTATION_REJECTED, e.getMessage(), AttestationVerifier.notVerified(quoteBytes, e.code(), e.getMessage()));
    }
  }

  private AttestationResult attest(byte[] quoteBytes, Quote quote, byte[] expectedReportData) throws RaTlsException {
    Collateral c;
    try {
      c = collateral.collateralFor(quote);
    } catch (IOException | RuntimeException e) {
      throw new RaTlsException(COLLATERAL_UNAVAILABLE, String.valueOf(e.getMessage()));
    }
    AttestationResult r = verifier.verify(quoteBytes, c, policy, Optional.of(expectedReportData));
    if (!r.accepted()) throw new RaTlsException(ATTESTATION_REJECTED, String.join("; ", r.reasons()), r);
    return r;
  }

  private void remember(String key, Cached entry, Instant now) {
    if (cache.size() >= MAX_CACHE_ENTRIES) cache.values().removeIf(c -> !now.isBefore(c.expires()));
    if (cache.size() >= MAX_CACHE_ENTRIES) cache.clear();
    cache.put(key, entry);
  }

  private static void checkSelfSigned(X509Certificate cert) throws RaTlsException {
    if (!cert.getIssuerX500Principal().equals(cert.getSubjectX500Principal())) {
      throw new RaTlsException(NOT_SELF_SIGNED, "issuer " + cert.getIssuerX500Principal() + " != subject " + cert.getSubjectX500Principal());
    }
    try {
      cert.verify(cert.getPublicKey());
    } catch (GeneralSecurityException e) {
      throw new RaTlsException(NOT_SELF_SIGNED, "signature does not verify with the certificate's key: " + e.getMessage());
    }
  }

  /** An extension's raw value (the DER OCTET STRING wrapper removed once). */
  private static Optional<byte[]> extension(X509Certificate cert, String oid) throws RaTlsException {
    byte[] wrapped = cert.getExtensionValue(oid);
    if (wrapped == null) return Optional.empty();
    try {
      return Optional.of(ASN1OctetString.getInstance(wrapped).getOctets());
    } catch (RuntimeException e) {
      throw new RaTlsException(MISSING_EXTENSION, "extension " + oid + " is not an OCTET STRING");
    }
  }

  private static Instant min(Instant a, Instant b, Instant c) {
    Instant m = a.isBefore(b) ? a : b;
    return m.isBefore(c) ? m : c;
  }

  private static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  /** What peers must satisfy. */
  public Policy policy() {
    return policy;
  }

  /** The longest an accepted attestation is reused without verifying the quote again. */
  public Duration maxTtl() {
    return maxTtl;
  }

  /**
   * Until when an accepted peer may be trusted without verifying again: the earliest of its
   * certificate's notAfter, its collateral's nextUpdate and {@link #maxTtl} from now.
   */
  public Instant verifiedUntil(RaTlsPeer peer) {
    Instant notAfter = peer.certificate().getNotAfter().toInstant();
    Instant now = verifier.clock().instant();
    return min(notAfter, peer.attestation().collateralNextUpdate().orElse(notAfter), now.plus(maxTtl));
  }

  /** How long from now until {@link #verifiedUntil}; negative once it has passed. */
  Duration dueIn(RaTlsPeer peer) {
    return Duration.between(verifier.clock().instant(), verifiedUntil(peer));
  }

  /**
   * Verifications answered from the cache. Package-private, for the tests: whether a peer was
   * checked afresh or from the cache shows nowhere else, and resumption and caching are what they check.
   */
  long cacheHits() {
    return hits.get();
  }

  /** Verifications that ran the full check; see {@link #cacheHits}. */
  long cacheMisses() {
    return misses.get();
  }
}
