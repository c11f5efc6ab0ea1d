package org.cocoonjvm.gateway.api;

import io.vertx.core.http.HttpServerResponse;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerGrpcClient;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.ErrorKind;

/**
 * One client request relayed to one worker. Owns that request's state and lives on the client
 * connection's event loop, so it needs no locks. The worker's gRPC stream is piped into the
 * {@link CompletionSink}: paused while the client's socket is full, cancelled when the client
 * goes away.
 */
final class ProxiedCall {
    private final GrpcClient grpc;
    private final RegisteredWorker worker;
    private final GenerateRequest request;
    private final HttpServerResponse response;
    private final CompletionSink sink;

    private GrpcClientRequest<GenerateRequest, GenerateEvent> call;
    private long completionTokens;
    private boolean gotFinal;
    private boolean done;

    ProxiedCall(GrpcClient grpc, RegisteredWorker worker, GenerateRequest request, HttpServerResponse response, CompletionSink sink) {
        this.grpc = grpc;
        this.worker = worker;
        this.request = request;
        this.response = response;
        this.sink = sink;
    }

    void start() {
        worker.started();
        response.closeHandler(v -> clientGone());
        grpc.request(worker.address(), WorkerGrpcClient.Generate).onComplete(opened -> {
            if (opened.failed()) {
                fail(new ApiException(ErrorKind.UPSTREAM, "The worker could not be reached: " + opened.cause().getMessage()));
                return;
            }
            call = opened.result();
            if (done) {
                call.cancel();
                return;
            }
            call.end(request);
            call.response().onComplete(answered -> {
                if (answered.failed()) {
                    fail(new ApiException(ErrorKind.UPSTREAM, "The worker failed: " + answered.cause().getMessage()));
                } else {
                    pipe(answered.result());
                }
            });
        });
    }

    private void pipe(GrpcClientResponse<GenerateRequest, GenerateEvent> stream) {
        stream.handler(event -> {
            switch (event.getEventCase()) {
                case DELTA -> {
                    completionTokens += event.getDelta().getTokenIdsCount();
                    sink.delta(event.getDelta());
                    if (sink.writeQueueFull()) {
                        // Stop reading; gRPC flow control then holds the worker's stream.
                        stream.pause();
                        sink.drainHandler(v -> stream.resume());
                    }
                }
                case FINAL -> {
                    gotFinal = true;
                    completionTokens = event.getFinal().getUsage().getCompletionTokens();
                    sink.finish(event.getFinal());
                }
                default -> { }
            }
        });
        stream.endHandler(v -> {
            if (!gotFinal) {
                fail(failureOf(stream.status(), stream.statusMessage()));
            }
            release();
        });
        stream.exceptionHandler(e -> fail(new ApiException(ErrorKind.UPSTREAM, "The worker's stream broke: " + e.getMessage())));
    }

    /** The client closed its connection: stop the worker now. */
    private void clientGone() {
        if (!gotFinal && call != null) {
            call.cancel();
        }
        release();
    }

    private void fail(ApiException error) {
        sink.fail(error);
        release();
    }

    private void release() {
        if (!done) {
            done = true;
            worker.finished(completionTokens);
        }
    }

    /** The worker refused or failed before its final event. */
    static ApiException failureOf(GrpcStatus status, String message) {
        String detail = message == null || message.isEmpty() ? String.valueOf(status) : message;
        return switch (status) {
            case INVALID_ARGUMENT -> new ApiException(ErrorKind.INVALID_REQUEST, detail);
            case NOT_FOUND -> new ApiException(ErrorKind.MODEL_NOT_FOUND, "model", detail);
            case RESOURCE_EXHAUSTED, UNAVAILABLE -> new ApiException(ErrorKind.NO_CAPACITY, "The worker is busy: " + detail);
            default -> new ApiException(ErrorKind.UPSTREAM, "The worker ended the stream without a result: " + detail);
        };
    }
}
