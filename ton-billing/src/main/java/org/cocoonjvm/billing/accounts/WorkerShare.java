package org.cocoonjvm.billing.accounts;

import org.cocoonjvm.billing.pricing.TokenCounts;

/**
 * What a request's checkpointed usage owes its worker: the worker fee of that usage, paid on the
 * payment channel {@code channelId} (lowercase hex, as the channel journal stores it), and which
 * worker and tokens it is for, so that a request its gateway never settles can be reported as its
 * checkpoint billed it ({@link RecoveredReservation}).
 *
 * @param workerId the worker the fee is owed to; null if not known
 * @param tokens   the usage the checkpoint bills; null if not known
 */
public record WorkerShare(String channelId, long feeNanoton, String workerId, TokenCounts tokens) {
    public WorkerShare {
        if (channelId == null || channelId.isBlank()) {
            throw new IllegalArgumentException("a worker share needs its channel id");
        }
        if (feeNanoton < 0) {
            throw new IllegalArgumentException("a worker fee must be >= 0 nanoTON, got " + feeNanoton);
        }
    }
}
