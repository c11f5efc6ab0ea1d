package org.cocoonjvm.billing.accounts;

/**
 * What a request's checkpointed usage owes its worker: the worker fee of that usage, paid on the
 * payment channel {@code channelId} (lowercase hex, as the channel journal stores it).
 */
public record WorkerShare(String channelId, long feeNanoton) {
    public WorkerShare {
        if (channelId == null || channelId.isBlank()) {
            throw new IllegalArgumentException("a worker share needs its channel id");
        }
        if (feeNanoton < 0) {
            throw new IllegalArgumentException("a worker fee must be >= 0 nanoTON, got " + feeNanoton);
        }
    }
}
