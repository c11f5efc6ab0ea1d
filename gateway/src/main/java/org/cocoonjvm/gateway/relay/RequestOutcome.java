package org.cocoonjvm.gateway.relay;

import org.cocoonjvm.protocol.openai.ServiceTier;

/**
 * How one request went, for access logs and metrics. Never holds prompt or completion text.
 *
 * @param status        the HTTP status sent (200 also for streams that later failed in-band), or
 *                      {@link #CLIENT_CLOSED_REQUEST} when the client left before any went out
 *                      (over gRPC: before the call's status, which its trailers carry)
 * @param errorCode     OpenAI error code of a failure, {@link Relay#STALLED} for a client that
 *                      stopped reading, null on success
 * @param finishReason  stop, length, or null when it did not finish
 * @param workerId      the worker of the last attempt, whether it served the request or failed it; null if none was tried
 * @param attempts      workers tried (retries happen only before the first token)
 * @param queueNanos    from routing to the worker admitting the sequence; -1 if it never did
 * @param ttftNanos     from arrival to the first token sent; -1 if none was
 * @param overheadNanos the gateway's own time before the first token reached the client: from
 *                      arrival until the first worker call was written, plus from the first
 *                      token's arrival from the worker until it was passed on; -1 if none was
 * @param totalNanos    from arrival until the response's last write was handed to the kernel (the
 *                      settlement it waits for and a slow reader's catching up count; what the
 *                      socket buffers still hold does not), or until the client left
 * @param clientGone    the client disconnected before the end
 * @param cancelNanos   from the gateway's cancel to the worker's final event, for a request stopped
 *                      while its worker generated (client gone, deadline, stalled reader, shutdown);
 *                      -1 otherwise, and for a worker that sent none in time (it was reset)
 * @param liveCompletionTokens of {@code completionTokens}, those already counted while the request
 *                      ran ({@link RelayObserver#generatedTokens}): metrics count only the rest at its end
 * @param liveCostNanoton of {@code costNanoton}, what the ledger's checkpoints recorded and metrics
 *                      counted while the request ran ({@code RequestBilling.ProgressCounter}): only the
 *                      rest is counted at its end
 */
public record RequestOutcome(String requestId, String keyId, String path, String model, ServiceTier tier, boolean stream,
                             String workerId, int attempts, int status, String errorCode, String finishReason,
                             long promptTokens, long completionTokens, long costNanoton, long queueNanos,
                             long ttftNanos, long overheadNanos, long totalNanos, boolean clientGone, long cancelNanos,
                             long liveCompletionTokens, long liveCostNanoton) {
    /**
     * The status of a request whose client left before its status went out: nginx's "client closed
     * request", which log tools know. It was served nothing, so it must not count as a 200.
     */
    public static final int CLIENT_CLOSED_REQUEST = 499;
}
