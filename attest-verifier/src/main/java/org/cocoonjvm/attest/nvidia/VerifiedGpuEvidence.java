package org.cocoonjvm.attest.nvidia;

import java.security.cert.X509Certificate;
import java.util.Optional;

/**
 * Evidence whose device chain, SPDM signature, FWID and nonce all verified.
 *
 * @param evidence the parsed request ‖ response
 * @param deviceLeaf the certificate whose key signed it (GSP FMC leaf)
 * @param certificateFwidHex FWID from the leaf's TCG DICE extension (lower-case hex, 48 bytes)
 */
public record VerifiedGpuEvidence(
    SpdmEvidence evidence, X509Certificate deviceLeaf, String certificateFwidHex) {

  public String driverVersion() {
    return evidence.driverVersion();
  }

  public String vbiosVersion() {
    return evidence.vbiosVersion();
  }

  /** The evidence's own FWID field; absent in 2023-era firmware, equal to the certificate's otherwise. */
  public Optional<String> evidenceFwidHex() {
    return evidence.fwidHex();
  }
}
