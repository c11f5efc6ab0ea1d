package org.cocoonjvm.billing.accounts;

import java.util.Objects;

/**
 * Which request a reservation is held for, stored with it (audit V, V-8): a gateway that dies with
 * the request running never ends it, and whoever does, at its last checkpoint, must still say which
 * request it billed ({@link RecoveredReservation}).
 *
 * @param requestId the gateway's request id (shown to the client)
 * @param keyId     the id of the API key it came with, as the access log names it
 * @param model     the model asked for
 */
public record ReservationLabel(String requestId, String keyId, String model) {
    public ReservationLabel {
        if (requestId == null || requestId.isBlank()) {
            throw new IllegalArgumentException("a reservation label needs a request id");
        }
        Objects.requireNonNull(keyId, "keyId");
        Objects.requireNonNull(model, "model");
    }
}
