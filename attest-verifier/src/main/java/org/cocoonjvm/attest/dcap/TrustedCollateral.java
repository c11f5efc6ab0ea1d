package org.cocoonjvm.attest.dcap;

import java.security.cert.X509Certificate;

/**
 * Collateral whose signatures and chains verified under the pinned root ({@link
 * CollateralVerifier#trust}), parsed. Not yet checked against a time or a quote; safe to cache
 * and share across quotes until its nextUpdate.
 *
 * @param pckCrlIssuer the PCK CA that signed the PCK CRL; null when the collateral has none
 */
public record TrustedCollateral(
    Collateral collateral, TcbInfo tcbInfo, QeIdentity qeIdentity, X509Certificate pckCrlIssuer) {}
