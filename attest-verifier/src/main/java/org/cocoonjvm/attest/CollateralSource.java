package org.cocoonjvm.attest;

import java.io.IOException;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.quote.Quote;

/**
 * Where a verifier gets collateral for a peer's quote (RA-TLS certificates carry only the quote).
 * Implementations: Intel PCS / a PCCS with caching (keyed by the PCK certificate's FMSPC and CA),
 * {@code DevTee::collateral} for development, {@link #fixed} for tests and offline use.
 */
@FunctionalInterface
public interface CollateralSource {
  /** @throws IOException when collateral cannot be had now; the peer is then refused */
  Collateral collateralFor(Quote quote) throws IOException;

  static CollateralSource fixed(Collateral c) {
    return quote -> c;
  }
}
