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

    void drainHandler(Handler<Void> handler);
}
