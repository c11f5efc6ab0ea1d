package org.cocoonjvm.attest.ratls;

import java.security.cert.X509Certificate;
import java.util.Optional;
import org.cocoonjvm.attest.AttestationResult;

/**
 * A peer whose RA-TLS certificate was accepted.
 *
 * @param publicKey the raw 32-byte Ed25519 key the quote is bound to
 * @param attestation the accepted result (tee kind, status, measurements, image hash)
 * @param cached true when the attestation came from the verifier's cache
 * @param gpu the verified GPU evidence extension; empty when the certificate has none
 * @param config what the peer says of its configuration, accepted by the policy's {@code config};
 *     {@link NodeConfig#NONE} when the certificate has no configuration extension
 */
public record RaTlsPeer(
    X509Certificate certificate, byte[] publicKey, AttestationResult attestation, boolean cached, Optional<GpuVerdict> gpu,
    NodeConfig config) {}
