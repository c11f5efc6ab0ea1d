package org.cocoonjvm.gateway.billing;

import java.util.Objects;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.Settlement;

/**
 * A request's settlement that the ledger has not taken yet: all that ending its reservation
 * takes, so that it can run again in the background, or at the next start from the
 * {@link PendingJournal}.
 *
 * @param requestId   the gateway's id of the request
 * @param reservation the receipt of its hold (account, id, amount)
 * @param record      what it used and cost, kept with the settlement; null for a request that used
 *                    nothing, whose reservation is released
 */
record PendingSettlement(String requestId, Reservation reservation, RequestRecord record) {
    PendingSettlement {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(reservation, "reservation");
    }

    /** What the client was told it costs: what this settlement charges. */
    long costNanoton() {
        return record == null ? 0 : record.clientCostNanoton();
    }

    /**
     * Ends the reservation. Safe to run again after any failure, and in another process: a
     * reservation ends once, a second end returns the first outcome.
     */
    Settlement bill(AccountBook accounts) {
        return record == null ? accounts.release(reservation) : accounts.settle(reservation, record);
    }
}
