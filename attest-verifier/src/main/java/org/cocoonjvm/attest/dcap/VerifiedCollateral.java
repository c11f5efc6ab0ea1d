package org.cocoonjvm.attest.dcap;

/**
 * Collateral that verified for one quote: CRLs current and not revoking the PCK chain, TCB Info
 * and QE Identity signed under the pinned root, current, and (TCB Info) for the PCK's FMSPC and
 * PCE-ID. Input to {@link TcbMatcher}.
 */
public record VerifiedCollateral(VerifiedSignatures signatures, TcbInfo tcbInfo, QeIdentity qeIdentity) {}
