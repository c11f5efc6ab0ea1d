package org.cocoonjvm.worker.serve;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.worker.scheduler.EventTarget;
import org.cocoonjvm.worker.scheduler.OutputMailbox;
import org.cocoonjvm.worker.scheduler.Generator;

/**
 * Starts a generation from an event loop: tokenizes and queues off the loop, and delivers output
 * back on the caller's context. Shared by the gRPC endpoint and the worker's own HTTP API.
 */
final class Submitter {
    private final Generator generator;

    Submitter(Generator generator) {
        this.generator = generator;
    }

    /**
     * @return a cancel action, safe to call at any time, even before the request is queued
     *         (it is then cancelled as soon as it is); the future fails with a
     *         {@link org.cocoonjvm.worker.scheduler.GenerationException} if the worker refuses it
     */
    Cancellable submit(Vertx vertx, GenerateRequest request, EventTarget target) {
        Context context = vertx.getOrCreateContext();
        OutputMailbox mailbox = new OutputMailbox(context, target);
        Cancellable handle = new Cancellable();
        handle.queued = vertx.executeBlocking(() -> generator.submit(request, mailbox), false)
                .onSuccess(cancel -> handle.bind(cancel));
        return handle;
    }

    /** Owned by one event loop. */
    static final class Cancellable {
        private Future<Runnable> queued;
        private Runnable cancel;
        private boolean cancelRequested;

        Future<Runnable> queued() {
            return queued;
        }

        void cancel() {
            cancelRequested = true;
            if (cancel != null) {
                cancel.run();
            }
        }

        private void bind(Runnable cancel) {
            this.cancel = cancel;
            if (cancelRequested) {
                cancel.run();
            }
        }
    }
}
