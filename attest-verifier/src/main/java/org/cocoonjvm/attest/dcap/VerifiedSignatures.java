package org.cocoonjvm.attest.dcap;

import java.security.cert.X509Certificate;
import org.cocoonjvm.attest.quote.Quote;

/**
 * A quote whose PCK chain, QE report signature, QE binding and quote signature have verified.
 * Produced by {@link QuoteSignatureVerifier#verify(Quote)}. TCB status, CRLs and policy are still open.
 *
 * @param quote the quote that verified
 * @param pckLeaf the PCK certificate; its SGX extension carries FMSPC, PCE-ID and TCB components
 * @param pckIssuer the Platform or Processor CA that issued the leaf
 * @param root the chain's root, equal by key to the pinned Intel SGX Root CA
 */
public record VerifiedSignatures(
    Quote quote, X509Certificate pckLeaf, X509Certificate pckIssuer, X509Certificate root) {

  /** FMSPC and PCE-ID read from {@link #pckLeaf()}, needed for TCB Info matching. */
  public PckExtensions pckExtensions() throws VerificationException {
    return PckExtensions.of(pckLeaf);
  }
}
