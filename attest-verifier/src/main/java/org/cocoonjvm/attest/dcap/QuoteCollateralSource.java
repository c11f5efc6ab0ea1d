package org.cocoonjvm.attest.dcap;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.security.PublicKey;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.quote.Quote;

/**
 * Collateral for a peer's quote from a collateral service (Intel PCS, a PCCS, an offline bundle)
 * by the quote's own {@link CollateralKey} (TEE, FMSPC of its PCK certificate, PCK CA), through a
 * {@link CollateralCache}: fetched and trusted once per key, kept until the earliest nextUpdate and
 * at most {@link CollateralCache#MAX_AGE}, by the injected clock. The quote's PCK chain is verified first so that a forged certificate cannot
 * make the node fetch for arbitrary FMSPCs. Thread-safe.
 */
public final class QuoteCollateralSource implements org.cocoonjvm.attest.CollateralSource {
  /** Per request to PCS/PCCS; a handshake waits for it on a miss. */
  public static final Duration HTTP_TIMEOUT = Duration.ofSeconds(10);

  private final PublicKey intelRoot;
  private final Clock clock;
  private final CollateralCache cache;

  public QuoteCollateralSource(CollateralSource service, PublicKey intelRoot, Clock clock) {
    this.intelRoot = Objects.requireNonNull(intelRoot, "intelRoot");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.cache = new CollateralCache(service, CollateralVerifier.create(intelRoot, clock), clock);
  }

  /** A PCCS at {@code base} (e.g. {@code https://pccs.local:8081}), Intel's root pinned. */
  public static QuoteCollateralSource pccs(URI base, Clock clock) {
    return new QuoteCollateralSource(PcsCollateralSource.pccs(HttpClient.newHttpClient(), base, HTTP_TIMEOUT),
        TrustAnchors.intel().intelRoot().getPublicKey(), clock);
  }

  /** Intel PCS itself, Intel's root pinned. */
  public static QuoteCollateralSource intelPcs(Clock clock) {
    return new QuoteCollateralSource(PcsCollateralSource.intelPcs(HttpClient.newHttpClient(), HTTP_TIMEOUT),
        TrustAnchors.intel().intelRoot().getPublicKey(), clock);
  }

  @Override
  public Collateral collateralFor(Quote quote) throws IOException {
    try {
      CollateralKey key = CollateralKey.of(QuoteSignatureVerifier.create(intelRoot, clock).verify(quote));
      return cache.get(key).collateral();
    } catch (VerificationException | CollateralFetchException e) {
      throw new IOException(e.getMessage(), e);
    }
  }
}
