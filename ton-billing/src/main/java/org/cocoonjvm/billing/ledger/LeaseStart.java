package org.cocoonjvm.billing.ledger;

import java.time.Instant;

/**
 * How a start took its gateway's lease, and from whom: what it logs, and what its recovery of the
 * previous incarnation's reservations says they were.
 *
 * @param epoch          the epoch this start took
 * @param how            why the lease could be taken
 * @param previousEpoch  the epoch of the previous holder, whose reservations are left to recover; 0 on a first start
 * @param previousHolder the process that held it before, where it was recorded; null otherwise
 * @param renewedAt      when the previous holder last renewed; null on a first start
 */
public record LeaseStart(long epoch, How how, long previousEpoch, LeaseHolder previousHolder, Instant renewedAt) {
    public enum How {
        /** No gateway had this id on the ledger. */
        FIRST,
        /** The previous holder stopped cleanly and released it. */
        RELEASED,
        /** The previous holder stopped renewing and another gateway's sweep fenced it. */
        FENCED,
        /** The previous holder stopped renewing and its lease expired. */
        EXPIRED,
        /** Its holder was not recorded (taken by a build before V10): taken as before, at once. */
        UNRECORDED,
        /**
         * Its holder no longer runs (a crash, a kill): it held the data dir this start holds locked,
         * or it ran on this host, in this PID namespace, and its process is gone.
         */
        HOLDER_GONE,
        /** Its holder looked alive, and the start took it over deliberately (fencing it). */
        TAKEN_OVER
    }

    /** Whose the previous incarnation was, for a log line: "epoch 3, pid 1234 on host-a, which ...". */
    public String previous() {
        String who = "epoch " + previousEpoch + (previousHolder == null ? "" : ", " + previousHolder);
        return switch (how) {
            case FIRST -> "none: the first start of this gateway id";
            case RELEASED -> who + ", which stopped cleanly";
            case FENCED -> who + ", which stopped renewing its lease and was fenced by another gateway";
            case EXPIRED -> who + ", whose lease expired (last renewed " + renewedAt + ")";
            case UNRECORDED -> who + ", a holder an older build did not record (last renewed " + renewedAt + ")";
            case HOLDER_GONE -> who + ", which no longer runs (last renewed " + renewedAt + ")";
            case TAKEN_OVER -> who + ", which was alive (last renewed " + renewedAt + ") and was taken over";
        };
    }
}
