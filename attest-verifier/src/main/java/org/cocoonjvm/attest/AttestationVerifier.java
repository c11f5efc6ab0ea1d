package org.cocoonjvm.attest;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.dcap.CollateralVerifier;
import org.cocoonjvm.attest.dcap.QuoteSignatureVerifier;
import org.cocoonjvm.attest.dcap.TcbMatcher;
import org.cocoonjvm.attest.dcap.TcbVerdict;
import org.cocoonjvm.attest.dcap.VerificationException;
import org.cocoonjvm.attest.dcap.VerifiedCollateral;
import org.cocoonjvm.attest.dcap.VerifiedSignatures;
import org.cocoonjvm.attest.policy.Evidence;
import org.cocoonjvm.attest.policy.ImageHash;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.policy.PolicyViolation;
import org.cocoonjvm.attest.policy.TeeKind;
import org.cocoonjvm.attest.quote.CertificationData;
import org.cocoonjvm.attest.quote.Quote;
import org.cocoonjvm.attest.quote.QuoteFormatException;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.cocoonjvm.attest.quote.TdReportBody;

/**
 * The one entry point for "is this quote acceptable": parse → PCK chain, QE and quote signatures
 * → collateral (CRLs, TCB Info, QE Identity) → TCB status → {@link Policy}. The root the quote's
 * chain ends in selects the anchor (Intel, or a configured development root); the same DCAP code
 * runs for both. Immutable and thread-safe; the clock is read once per call.
 */
public final class AttestationVerifier {
  private final TrustAnchors anchors;
  private final Clock clock;
  private final boolean allowMissingPckCrl;

  private AttestationVerifier(TrustAnchors anchors, Clock clock, boolean allowMissingPckCrl) {
    this.anchors = Objects.requireNonNull(anchors, "anchors");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.allowMissingPckCrl = allowMissingPckCrl;
  }

  public static AttestationVerifier create(TrustAnchors anchors, Clock clock) {
    return new AttestationVerifier(anchors, clock, false);
  }

  /** Accepts collateral without a PCK CRL (some PCCS deployments omit it); a present one is still checked. */
  public AttestationVerifier allowingMissingPckCrl() {
    return new AttestationVerifier(anchors, clock, true);
  }

  public Clock clock() {
    return clock;
  }

  /**
   * Never throws for bad input: every problem is in the result.
   *
   * @param expectedReportData the 64 bytes report_data must equal; empty only where nothing is
   *     bound (offline inspection)
   */
  public AttestationResult verify(byte[] quoteBytes, Collateral collateral, Policy policy, Optional<byte[]> expectedReportData) {
    Objects.requireNonNull(policy, "policy");
    Quote quote;
    try {
      quote = QuoteParser.parse(quoteBytes);
    } catch (QuoteFormatException e) {
      return failed(Optional.empty(), Optional.empty(), e.code(), e.getMessage());
    }
    // One instant for every step, so the chain and the collateral are judged at the same time.
    Clock fixed = Clock.fixed(clock.instant(), clock.getZone());
    PublicKey anchorKey = anchors.intelRoot().getPublicKey();
    TeeKind tee = quote.isTdx() ? TeeKind.INTEL_TDX : TeeKind.INTEL_SGX;
    Optional<X509Certificate> devRoot = chainRootKey(quote).flatMap(anchors::devRootWithKey);
    if (devRoot.isPresent()) {
      anchorKey = devRoot.get().getPublicKey();
      tee = TeeKind.DEV;
    }
    try {
      VerifiedSignatures sigs = QuoteSignatureVerifier.create(anchorKey, fixed).verify(quote);
      CollateralVerifier cv = CollateralVerifier.create(anchorKey, fixed);
      if (allowMissingPckCrl) cv = cv.allowingMissingPckCrl();
      VerifiedCollateral vc = cv.verify(collateral, sigs);
      TcbVerdict verdict = TcbMatcher.match(vc);
      Optional<String> imageHash = quote.body() instanceof TdReportBody td ? Optional.of(ImageHash.of(td)) : Optional.empty();
      String rootKeyId = TrustAnchors.rootKeyId(anchorKey);
      Evidence evidence = new Evidence(quote, tee, verdict.status(), verdict.advisories(), imageHash, rootKeyId,
          vc.tcbInfo().tcbEvaluationDataNumber(), vc.qeIdentity().tcbEvaluationDataNumber());
      List<PolicyViolation> violations = policy.check(evidence, expectedReportData);
      return new AttestationResult(Optional.of(quote), Optional.of(tee), Optional.of(verdict.status()), verdict.advisories(),
          imageHash, Optional.of(rootKeyId), Optional.of(sigs.pckExtensions().fmspc()), Optional.of(nextUpdate(collateral, vc)),
          Optional.empty(), violations);
    } catch (VerificationException e) {
      return failed(Optional.of(quote), Optional.of(tee), e.code(), e.getMessage());
    }
  }

  /**
   * A refusal for a quote that never reached verification (collateral could not be had or read),
   * with the quote's fields where it parses.
   */
  public static AttestationResult notVerified(byte[] quoteBytes, String code, String message) {
    Optional<Quote> quote;
    try {
      quote = Optional.of(QuoteParser.parse(quoteBytes));
    } catch (QuoteFormatException e) {
      return failed(Optional.empty(), Optional.empty(), e.code(), e.getMessage());
    }
    return failed(quote, Optional.empty(), code, message);
  }

  private static AttestationResult failed(Optional<Quote> quote, Optional<TeeKind> tee, String code, String message) {
    return new AttestationResult(quote, tee, Optional.empty(), List.of(), Optional.empty(), Optional.empty(), Optional.empty(),
        Optional.empty(), Optional.of(new AttestationResult.Failure(code, message)), List.of());
  }

  /** The last certificate of the quote's PEM chain, which names the anchor to use; empty when unreadable (verification then reports why). */
  private static Optional<PublicKey> chainRootKey(Quote quote) {
    CertificationData cd = quote.signature().certification();
    if (cd.type() != CertificationData.TYPE_PCK_CERT_CHAIN) return Optional.empty();
    try {
      var certs = CertificateFactory.getInstance("X.509")
          .generateCertificates(new ByteArrayInputStream(cd.pemChain().getBytes(StandardCharsets.US_ASCII)));
      return certs.stream().reduce((a, b) -> b).map(c -> c.getPublicKey());
    } catch (Exception e) {
      return Optional.empty();
    }
  }

  private static Instant nextUpdate(Collateral c, VerifiedCollateral vc) {
    Stream<Instant> crls = Stream.concat(Stream.of(c.rootCaCrl()), c.pckCrl().stream())
        .map(crl -> crl.getNextUpdate().toInstant());
    return Stream.concat(crls, Stream.of(vc.tcbInfo().nextUpdate(), vc.qeIdentity().nextUpdate()))
        .min(Instant::compareTo).orElseThrow();
  }

  @Override
  public String toString() {
    return "AttestationVerifier[" + clock + ", allowMissingPckCrl=" + allowMissingPckCrl + "]";
  }
}
