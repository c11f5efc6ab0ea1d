package org.cocoonjvm.attest.dcap;

import java.security.cert.X509CRL;
import java.time.Clock;
import java.time.Instant;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A cache in front of another source, one entry per {@link CollateralKey}, kept until the earliest
 * nextUpdate of its TCB Info, QE Identity, root CA CRL and PCK CRL (by the injected clock), then
 * fetched again. Concurrent misses for one key may fetch twice; the later result wins.
 */
public final class CachingCollateralSource implements CollateralSource {
  private final CollateralSource delegate;
  private final Clock clock;
  private final ConcurrentHashMap<CollateralKey, Entry> entries = new ConcurrentHashMap<>();

  private record Entry(Collateral collateral, Instant expires) {}

  public CachingCollateralSource(CollateralSource delegate, Clock clock) {
    this.delegate = Objects.requireNonNull(delegate, "delegate");
    this.clock = Objects.requireNonNull(clock, "clock");
  }

  @Override
  public Collateral fetch(CollateralKey key) throws CollateralFetchException {
    Entry e = entries.get(key);
    if (e != null && clock.instant().isBefore(e.expires())) return e.collateral();
    Collateral fresh = delegate.fetch(key);
    entries.put(key, new Entry(fresh, expires(fresh)));
    return fresh;
  }

  /** Earliest nextUpdate; collateral whose dates cannot be read expires at once. */
  static Instant expires(Collateral c) {
    try {
      Instant t = TcbInfo.parse(c.tcbInfoJson()).nextUpdate();
      t = min(t, QeIdentity.parse(c.qeIdentityJson()).nextUpdate());
      t = min(t, nextUpdate(c.rootCaCrl()));
      if (c.pckCrl().isPresent()) t = min(t, nextUpdate(c.pckCrl().get()));
      return t;
    } catch (RuntimeException e) {
      return Instant.MIN;
    }
  }

  private static Instant nextUpdate(X509CRL crl) {
    return crl.getNextUpdate() == null ? Instant.MIN : crl.getNextUpdate().toInstant();
  }

  private static Instant min(Instant a, Instant b) {
    return a.isBefore(b) ? a : b;
  }
}
