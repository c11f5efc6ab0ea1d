package org.cocoonjvm.attest.dcap;

/**
 * Where DCAP collateral comes from: an offline bundle, Intel PCS, a PCCS, or a cache in front of
 * one of them. Nothing a source returns is trusted: {@link CollateralVerifier} checks it.
 */
public interface CollateralSource {
  Collateral fetch(CollateralKey key) throws CollateralFetchException;
}
