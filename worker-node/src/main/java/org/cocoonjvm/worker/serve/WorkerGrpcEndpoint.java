package org.cocoonjvm.worker.serve;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vertx.grpc.server.GrpcServerResponse;
import java.util.function.Supplier;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerGrpcService;
import org.cocoonjvm.protocol.grpc.WorkerStatus;
import org.cocoonjvm.worker.scheduler.EventTarget;
import org.cocoonjvm.worker.scheduler.GenerationException;

/** The worker's side of the gRPC contract: {@code Generate} and {@code Status}. */
final class WorkerGrpcEndpoint {
    private final Vertx vertx;
    private final Submitter submitter;
    private final Supplier<WorkerStatus> status;

    WorkerGrpcEndpoint(Vertx vertx, Submitter submitter, Supplier<WorkerStatus> status) {
        this.vertx = vertx;
        this.submitter = submitter;
        this.status = status;
    }

    void bind(GrpcServer server) {
        server.callHandler(WorkerGrpcService.Generate, this::generate);
        server.callHandler(WorkerGrpcService.Status, call -> call.handler(request -> call.response().end(status.get())));
    }

    private void generate(GrpcServerRequest<GenerateRequest, GenerateEvent> call) {
        call.handler(request -> {
            GrpcServerResponse<GenerateRequest, GenerateEvent> response = call.response();
            Submitter.Cancellable running = submitter.submit(vertx, request, new GrpcTarget(response));
            // A reset from the gateway (client gone, timeout) arrives here; stop the sequence.
            call.exceptionHandler(failure -> running.cancel());
            running.queued().onFailure(failure -> {
                if (failure instanceof GenerationException refused) {
                    response.status(refused.reason().grpcStatus).statusMessage(refused.getMessage()).end();
                } else {
                    response.status(GrpcStatus.INTERNAL).statusMessage("worker error").end();
                }
            });
        });
    }

    private record GrpcTarget(GrpcServerResponse<GenerateRequest, GenerateEvent> response) implements EventTarget {
        @Override
        public void delta(Delta delta) {
            response.write(GenerateEvent.newBuilder().setDelta(delta).build());
        }

        @Override
        public void finish(Final fin) {
            if (fin.getFinishReason() != FinishReason.FINISH_REASON_CANCELLED) {
                response.end(GenerateEvent.newBuilder().setFinal(fin).build());
            }
        }

        @Override
        public boolean writeQueueFull() {
            return response.writeQueueFull();
        }

        @Override
        public void drainHandler(Handler<Void> handler) {
            response.drainHandler(handler);
        }
    }
}
