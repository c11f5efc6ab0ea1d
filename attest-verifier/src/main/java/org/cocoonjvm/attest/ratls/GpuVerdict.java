package org.cocoonjvm.attest.ratls;

import java.util.Optional;

/**
 * A peer's GPU evidence extension that verified: the GPU is an NVIDIA device whose chain ends at
 * the pinned root and whose signed measurements carry the nonce of this certificate's key.
 *
 * @param fwidHex the device leaf's FWID
 * @param measurementsCompared active golden measurements compared (all matched); empty when the
 *     policy names no RIMs, so only the evidence itself was checked
 */
public record GpuVerdict(String driverVersion, String vbiosVersion, String fwidHex, Optional<Integer> measurementsCompared) {}
