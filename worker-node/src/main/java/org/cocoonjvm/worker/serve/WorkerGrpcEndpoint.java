package org.cocoonjvm.worker.serve;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vertx.grpc.server.GrpcServerResponse;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.cocoonjvm.protocol.grpc.Accepted;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerGrpcService;
import org.cocoonjvm.protocol.grpc.WorkerStatus;
import org.cocoonjvm.protocol.openai.ErrorTrailers;
import org.cocoonjvm.worker.scheduler.EventTarget;
import org.cocoonjvm.worker.scheduler.GenerationException;

/** The worker's side of the gRPC contract: {@code Generate} and {@code Status}. */
final class WorkerGrpcEndpoint {
    private final Vertx vertx;
    private final Submitter submitter;
    private final Supplier<WorkerStatus> status;
    /** Refuses, by throwing GenerationException, a request its payer must not send. */
    private final Consumer<GenerateRequest> paymentCheck;

    WorkerGrpcEndpoint(Vertx vertx, Submitter submitter, Supplier<WorkerStatus> status, Consumer<GenerateRequest> paymentCheck) {
        this.vertx = vertx;
        this.submitter = submitter;
        this.status = status;
        this.paymentCheck = paymentCheck;
    }

    void bind(GrpcServer server) {
        server.callHandler(WorkerGrpcService.Generate, this::generate);
        server.callHandler(WorkerGrpcService.Status, call -> call.handler(request -> call.response().end(status.get())));
    }

    private void generate(GrpcServerRequest<GenerateRequest, GenerateEvent> call) {
        call.handler(request -> {
            GrpcServerResponse<GenerateRequest, GenerateEvent> response = call.response();
            try {
                paymentCheck.accept(request);
            } catch (GenerationException refused) {
                refuse(response, refused);
                return;
            }
            GrpcTarget target = new GrpcTarget(response);
            Submitter.Cancellable running = submitter.submit(vertx, request, target);
            // The gateway resets the stream when its client leaves or times out: stop the sequence.
            call.errorHandler(error -> target.reset(running));
            call.exceptionHandler(failure -> target.reset(running));
            response.exceptionHandler(failure -> target.reset(running));
            running.queued().onFailure(failure -> {
                if (failure instanceof GenerationException refused) {
                    refuse(response, refused);
                } else {
                    response.status(GrpcStatus.INTERNAL).statusMessage("worker error").end();
                }
            });
        });
    }

    /**
     * The refusal's status, with its code and param as trailers: the gateway tells a context
     * window from any other invalid request, and this worker's "busy" from gRPC's own
     * {@code RESOURCE_EXHAUSTED} for a message over the size limit, by them.
     */
    private static void refuse(GrpcServerResponse<GenerateRequest, GenerateEvent> response, GenerationException refused) {
        ErrorTrailers.write(response.trailers(), refused.toApiException());
        response.status(refused.reason().grpcStatus).end();  // the message is among ErrorTrailers' trailers
    }

    /** Writes one sequence's events to its gRPC response; owned by the call's event loop. */
    private static final class GrpcTarget implements EventTarget {
        private final GrpcServerResponse<GenerateRequest, GenerateEvent> response;
        private boolean reset;

        GrpcTarget(GrpcServerResponse<GenerateRequest, GenerateEvent> response) {
            this.response = response;
        }

        void reset(Submitter.Cancellable running) {
            reset = true;
            running.cancel();
        }

        @Override
        public void accepted(int promptTokens) {
            if (!reset) {
                response.write(GenerateEvent.newBuilder().setAccepted(Accepted.newBuilder().setPromptTokens(promptTokens)).build());
            }
        }

        @Override
        public void delta(Delta delta) {
            if (!reset) {
                response.write(GenerateEvent.newBuilder().setDelta(delta).build());
            }
        }

        @Override
        public void finish(Final fin) {
            if (!reset) {
                response.end(GenerateEvent.newBuilder().setFinal(fin).build());
            }
        }

        @Override
        public boolean writeQueueFull() {
            return !reset && response.writeQueueFull();
        }

        @Override
        public void drainHandler(Handler<Void> handler) {
            response.drainHandler(handler);
        }
    }
}
