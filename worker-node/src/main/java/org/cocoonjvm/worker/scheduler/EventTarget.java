package org.cocoonjvm.worker.scheduler;

import io.vertx.core.Handler;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;

/**
 * Where one sequence's output goes: a gRPC response or an HTTP response. Called only on the
 * context that {@link OutputMailbox} was given, never on the engine thread.
 */
public interface EventTarget {
    /** The worker queued the sequence; its prompt has this many tokens. Comes before any delta. */
    default void accepted(int promptTokens) {
    }

    void delta(Delta delta);

    /** The last call this target gets. */
    void finish(Final fin);

    boolean writeQueueFull();

    /**
     * The caller is gone (its stream was reset): nothing handed to this target reaches it any
     * more, and the gateway bills only what did.
     */
    default boolean gone() {
        return false;
    }

    /**
     * Whether this target's event loop stalled within the last moment: a caller may have given up
     * on the stream meanwhile, and the loop may not have read its reset yet (see OutputMailbox).
     */
    default boolean stalledLately() {
        return false;
    }

    /**
     * Runs {@code then} once the caller has shown that it still reads this target's stream, or it
     * is {@link #gone()}. Frames reach a peer in order, so a reset it sent before it answered is
     * seen first. For the writes after a stall: see OutputMailbox.
     */
    default void afterRoundTrip(Runnable then) {
        then.run();
    }

    void drainHandler(Handler<Void> handler);
}
