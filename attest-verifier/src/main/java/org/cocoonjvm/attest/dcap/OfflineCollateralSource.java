package org.cocoonjvm.attest.dcap;

import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * Collateral bundles in dcap-qvl's {@code QuoteCollateralV3} JSON shape (the fixtures' format),
 * indexed by the key each bundle is for: TEE from the TCB Info id, FMSPC from the TCB Info, CA
 * from the PCK CRL issuer chain's first certificate.
 */
public final class OfflineCollateralSource implements CollateralSource {
  private final Map<CollateralKey, Collateral> bundles;

  private OfflineCollateralSource(Map<CollateralKey, Collateral> bundles) {
    this.bundles = Map.copyOf(bundles);
  }

  /** Throws {@link IllegalArgumentException} for a bundle that does not parse or repeats a key. */
  public static OfflineCollateralSource of(List<String> bundleJsonTexts) {
    Map<CollateralKey, Collateral> m = new HashMap<>();
    for (String text : bundleJsonTexts) {
      Collateral c = Collateral.parse(text);
      TcbInfo tcb = TcbInfo.parse(c.tcbInfoJson());
      CollateralKey key = new CollateralKey(CollateralKey.Tee.valueOf(tcb.id()),
          HexFormat.of().formatHex(tcb.fmspc()), CollateralKey.PckCa.ofIssuer(c.pckCrlIssuerChain().get(0)));
      if (m.put(key, c) != null) throw new IllegalArgumentException("two bundles for " + key);
    }
    return new OfflineCollateralSource(m);
  }

  @Override
  public Collateral fetch(CollateralKey key) throws CollateralFetchException {
    Collateral c = bundles.get(key);
    if (c == null) {
      throw new CollateralFetchException(CollateralFetchException.Reason.NOT_FOUND,
          "no bundle for " + key + " (have " + bundles.keySet() + ")", null);
    }
    return c;
  }
}
