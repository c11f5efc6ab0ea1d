package org.cocoonjvm.gateway.attestation;

import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import org.cocoonjvm.attest.ratls.GpuVerdict;
import org.cocoonjvm.attest.ratls.NodeConfig;
import org.cocoonjvm.attest.ratls.RaTlsPeer;

/**
 * What the gateway proved about one registered worker. {@link #NONE} when the gateway runs
 * without attestation (plaintext, tests and baselines): such a worker is never counted as attested.
 *
 * Verification is repeated in place while the session lasts (see {@code RaTlsNode#admit}); a
 * refusal then ends the session, which deregisters the worker.
 *
 * @param tee                 e.g. {@code TDX} or {@code dev (not hardware-backed)}; {@code none} when not attested
 * @param tcbStatus           the converged TCB status at registration, null when not attested
 * @param imageHash           Cocoon's image hash of the worker's TD, null when not attested
 * @param certificateNotAfter the session cannot outlive the worker's RA-TLS certificate; null when not attested
 * @param gpu                 the worker's GPU evidence extension, verified (a worker whose evidence fails, or
 *                            lacks it under a GPU-requiring policy, is refused, not registered); empty when it has none
 * @param config              what the worker's certificate says of its configuration (its engine, its policy's
 *                            digest), accepted by the worker policy's {@code config}; empty when it says nothing
 */
public record AttestationState(boolean attested, String tee, String tcbStatus, String imageHash,
                               Instant certificateNotAfter, Optional<GpuVerdict> gpu, NodeConfig config) {
    public static final AttestationState NONE = new AttestationState(false, "none", null, null, null, Optional.empty(),
            NodeConfig.NONE);

    public AttestationState {
        Objects.requireNonNull(tee, "tee");
        Objects.requireNonNull(gpu, "gpu");
        Objects.requireNonNull(config, "config");
        if (attested && certificateNotAfter == null) {
            throw new IllegalArgumentException("an attested worker needs its certificate's notAfter");
        }
    }

    static AttestationState of(RaTlsPeer peer) {
        var a = peer.attestation();
        return new AttestationState(true, a.tee().orElseThrow().label(), a.status().map(s -> s.jsonName()).orElse(null),
                a.imageHash().orElse(null), peer.certificate().getNotAfter().toInstant(), peer.gpu(),
                peer.config());
    }

    /** {@code verified} or {@code none}: the value of {@code attestation} in {@code /admin/workers}. */
    public String status() {
        return attested ? "verified" : "none";
    }

    /** The admin view's fields; absent values are left out. */
    public void into(JsonObject worker) {
        worker.put("attestation", status()).put("tee", tee);
        if (tcbStatus != null) worker.put("tcb_status", tcbStatus);
        if (imageHash != null) worker.put("image_hash", imageHash);
        if (certificateNotAfter != null) worker.put("certificate_not_after", certificateNotAfter.toString());
        if (attested) worker.put("gpu", gpu.isPresent() ? "verified" : "none");
        gpu.ifPresent(g -> {
            worker.put("gpu_driver_version", g.driverVersion()).put("gpu_vbios_version", g.vbiosVersion())
                    .put("gpu_fwid", g.fwidHex());
            g.measurementsCompared().ifPresent(n -> worker.put("gpu_measurements_compared", n));
        });
        if (attested) worker.put("config", config.toJson());
    }
}
