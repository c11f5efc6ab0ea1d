package org.cocoonjvm.attest.dcap;

import java.security.cert.X509CRL;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Trusted collateral per {@link CollateralKey}: fetched from a {@link CollateralSource}, checked once
 * with {@link CollateralVerifier#trust}, and kept until the earliest nextUpdate of its TCB Info,
 * QE Identity, root CA CRL and PCK CRL, and at most {@link #MAX_AGE} (by the injected clock),
 * then fetched and checked again.
 * Quotes then only pay {@link CollateralVerifier#verify(TrustedCollateral, VerifiedSignatures)}.
 * Collateral that fails {@code trust} is not kept. Concurrent misses for one key may fetch twice;
 * the later result wins.
 */
public final class CollateralCache {
  /**
   * The longest collateral is reused whatever its nextUpdate says. Intel's is valid for about 30
   * days, while a PCK revocation or a TCB recovery it publishes counts from the next day.
   */
  public static final Duration MAX_AGE = Duration.ofHours(24);

  private final CollateralSource source;
  private final CollateralVerifier verifier;
  private final Clock clock;
  private final ConcurrentHashMap<CollateralKey, Entry> entries = new ConcurrentHashMap<>();

  private record Entry(TrustedCollateral collateral, Instant expires) {}

  public CollateralCache(CollateralSource source, CollateralVerifier verifier, Clock clock) {
    this.source = Objects.requireNonNull(source, "source");
    this.verifier = Objects.requireNonNull(verifier, "verifier");
    this.clock = Objects.requireNonNull(clock, "clock");
  }

  public TrustedCollateral get(CollateralKey key) throws CollateralFetchException, VerificationException {
    Entry e = entries.get(key);
    Instant now = clock.instant();
    if (e != null && now.isBefore(e.expires())) return e.collateral();
    TrustedCollateral fresh = verifier.trust(source.fetch(key));
    entries.put(key, new Entry(fresh, expires(fresh, now)));
    return fresh;
  }

  /** The earliest nextUpdate of the four signed pieces, and no later than {@link #MAX_AGE} after {@code fetched}. */
  static Instant expires(TrustedCollateral t, Instant fetched) {
    Instant e = min(fetched.plus(MAX_AGE), min(t.tcbInfo().nextUpdate(), t.qeIdentity().nextUpdate()));
    e = min(e, nextUpdate(t.collateral().rootCaCrl()));
    if (t.collateral().pckCrl().isPresent()) e = min(e, nextUpdate(t.collateral().pckCrl().get()));
    return e;
  }

  /** {@link CollateralVerifier#trust} rejects CRLs without nextUpdate, so this is always set. */
  private static Instant nextUpdate(X509CRL crl) {
    return crl.getNextUpdate().toInstant();
  }

  private static Instant min(Instant a, Instant b) {
    return a.isBefore(b) ? a : b;
  }
}
