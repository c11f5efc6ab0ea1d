package org.cocoonjvm.protocol.openai;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.Usage;

/**
 * Where one generation's events go to become an OpenAI response: as Server-Sent Events
 * ({@link SseWriter}) or as one JSON document ({@link JsonWriter}). Called on the HTTP
 * response's event loop only.
 *
 * <p>The worker's own HTTP API and the gateway both feed one of these, so the two produce
 * byte-identical responses for the same events.
 */
public interface CompletionSink {
    void delta(Delta delta);

    /**
     * As {@link #delta(Delta)}, with the usage so far, which a stream puts on the delta's chunk
     * (vLLM's {@code continuous_usage_stats}); a single document has no chunks, and ignores it.
     */
    default void delta(Delta delta, Usage running) {
        delta(delta);
    }

    /**
     * The last event: writes what is left and ends the response. {@code cost} is null where unpriced.
     *
     * @return the end's write: done once the last bytes were handed to the connection (a client
     *         that reads slowly holds it back), failed if the response had already ended or closed
     */
    Future<Void> finish(Final fin, UsageCost cost);

    /**
     * While waiting for the first token: commits the status (200) if it was not yet, and writes a
     * comment line so proxies and load balancers see the stream alive. A no-op for responses that
     * are not streams.
     */
    void keepAlive();

    /**
     * Fails the response. Before anything was sent this is a real HTTP status with an error body;
     * afterwards it is an in-band error event, then {@code [DONE]}.
     */
    default Future<Void> fail(ApiException error) {
        return fail(error, null, null);
    }

    /**
     * Fails a response whose generation got as far as {@code usage}, billed at {@code cost} (null
     * where unpriced): as {@link #fail(ApiException)}, and a stream under way reports that usage
     * before its error event, as it would have before {@code [DONE]}: the client pays for it.
     *
     * @return the end's write, as {@link #finish}'s
     */
    Future<Void> fail(ApiException error, Usage usage, UsageCost cost);

    /**
     * The client stopped reading: drop the response without another byte, so that what is queued
     * for it is freed (an HTTP/1 connection closes; an HTTP/2 stream or gRPC call is reset).
     */
    void abandon();

    /** Whether the HTTP status line has been sent: after that, failures can no longer change it. */
    boolean committed();

    /** True once finish or fail ran, or the client went away. */
    boolean ended();

    boolean writeQueueFull();

    void drainHandler(Handler<Void> handler);

    /**
     * The completion tokens a delta carries: those with ids and those a forwarding worker only
     * counted (a uint32: read as signed, a count past 2^31 was negative and passed every bound,
     * review Y, Y-1).
     */
    static long tokens(Delta delta) {
        return delta.getTokenIdsCount() + Integer.toUnsignedLong(delta.getTokensWithoutIds());
    }

    /**
     * The failure a worker's final event reports, or null when it is a normal end (stop, length,
     * cancelled) that a sink writes as its successful finish.
     */
    static ApiException failureOf(Final fin) {
        return switch (fin.getFinishReason()) {
            case FINISH_REASON_STOP, FINISH_REASON_LENGTH, FINISH_REASON_CANCELLED -> null;
            case FINISH_REASON_ERROR -> workerFailure(fin);
            case FINISH_REASON_UNSPECIFIED, UNRECOGNIZED ->
                    new ApiException(ErrorKind.UPSTREAM, "The worker ended without a finish reason.");
        };
    }

    /**
     * A failed final event as its client is told it: a worker's planned stop is {@code
     * shutting_down} (send it again, elsewhere or later), anything else the worker's fault.
     */
    static ApiException workerFailure(Final fin) {
        return fin.getWorkerStopping()
                ? ApiException.retryLater(ErrorKind.SHUTTING_DOWN, "The worker is shutting down: " + fin.getError()
                        + " Send the request again.", 1)
                : new ApiException(ErrorKind.UPSTREAM, "The worker failed: " + fin.getError());
    }

    static String finishReason(Final fin) {
        return switch (fin.getFinishReason()) {
            case FINISH_REASON_LENGTH -> "length";
            case FINISH_REASON_STOP, FINISH_REASON_CANCELLED -> "stop";
            default -> throw new IllegalArgumentException("no OpenAI finish_reason for " + fin.getFinishReason());
        };
    }
}
