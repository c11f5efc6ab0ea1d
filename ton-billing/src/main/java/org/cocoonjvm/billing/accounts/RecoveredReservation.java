package org.cocoonjvm.billing.accounts;

import java.util.Objects;
import org.cocoonjvm.billing.pricing.TokenCounts;

/**
 * A reservation that recovery ended at its last recorded progress because the gateway that took it
 * never did: it died ({@link AccountBook#recoverOpenReservations} at its next start) or let its lease
 * expire (a peer's sweep). With what the book knows of its request, so that the process that billed
 * it can log and count it as it would any request (audit V, V-8).
 *
 * @param settlement how it ended: charged its last progress, or released if none was recorded
 * @param label      what it was held for; null for a reservation taken before the book stored that
 * @param workerId   the worker its last checkpoint paid; null if no checkpoint named one
 * @param tokens     the usage of that checkpoint, which {@code settlement} charges; null if none recorded it
 */
public record RecoveredReservation(Settlement settlement, ReservationLabel label, String workerId, TokenCounts tokens) {
    public RecoveredReservation {
        Objects.requireNonNull(settlement, "settlement");
    }
}
