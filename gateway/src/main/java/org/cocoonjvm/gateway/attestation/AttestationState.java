package org.cocoonjvm.gateway.attestation;

import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.Objects;
import org.cocoonjvm.attest.ratls.RaTlsPeer;

/**
 * What the gateway proved about one registered worker. {@link #NONE} when the gateway runs
 * without attestation (plaintext, tests and baselines): such a worker is never counted as attested.
 *
 * @param tee           e.g. {@code TDX} or {@code dev (not hardware-backed)}; {@code none} when not attested
 * @param tcbStatus     the converged TCB status, null when not attested
 * @param imageHash     Cocoon's image hash of the worker's TD, null when not attested
 * @param verifiedUntil when its evidence must be verified again (the session is closed then), null when not attested
 */
public record AttestationState(boolean attested, String tee, String tcbStatus, String imageHash, Instant verifiedUntil) {
    public static final AttestationState NONE = new AttestationState(false, "none", null, null, null);

    public AttestationState {
        Objects.requireNonNull(tee, "tee");
        if (attested && verifiedUntil == null) {
            throw new IllegalArgumentException("an attested worker needs verifiedUntil");
        }
    }

    static AttestationState of(RaTlsPeer peer, Instant verifiedUntil) {
        var a = peer.attestation();
        return new AttestationState(true, a.tee().orElseThrow().label(),
                a.status().map(s -> s.jsonName()).orElse(null), a.imageHash().orElse(null), verifiedUntil);
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
        if (verifiedUntil != null) worker.put("verified_until", verifiedUntil.toString());
    }
}
