package org.cocoonjvm.worker.scheduler;

import io.vertx.grpc.common.GrpcStatus;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;

/** Why the worker refused a request before generating anything. */
public final class GenerationException extends RuntimeException {
    /** Each reason with the gRPC status the gateway sees and the HTTP error a direct client sees. */
    public enum Reason {
        INVALID_ARGUMENT(GrpcStatus.INVALID_ARGUMENT, ErrorKind.INVALID_REQUEST),
        CONTEXT_LENGTH_EXCEEDED(GrpcStatus.INVALID_ARGUMENT, ErrorKind.CONTEXT_LENGTH_EXCEEDED),
        MODEL_NOT_FOUND(GrpcStatus.NOT_FOUND, ErrorKind.MODEL_NOT_FOUND),
        OVERLOADED(GrpcStatus.RESOURCE_EXHAUSTED, ErrorKind.NO_CAPACITY),
        SHUTTING_DOWN(GrpcStatus.UNAVAILABLE, ErrorKind.NO_CAPACITY),
        /** The engine failed for good: like a worker shutting down, the gateway sends the request elsewhere. */
        ENGINE_FAILED(GrpcStatus.UNAVAILABLE, ErrorKind.NO_CAPACITY),
        /**
         * A forwarding worker's upstream server failed (an error status other than busy, no status
         * in time, no connection): the worker is broken, not busy, and the gateway's circuit
         * breaker counts it.
         */
        UPSTREAM_FAILED(GrpcStatus.UNAVAILABLE, ErrorKind.UPSTREAM),
        /**
         * The model has no chat template: it is not a chat model (OpenAI answers the same with an
         * invalid_request_error on param model). Every worker of a name@hash has the same files, so
         * no other would do better, and the worker is not failing: no retry, no circuit breaker.
         */
        NO_CHAT_TEMPLATE(GrpcStatus.INVALID_ARGUMENT, ErrorKind.INVALID_REQUEST),
        /** The request names no channel, or one this worker does not know or cannot price. */
        PAYMENT_REQUIRED(GrpcStatus.FAILED_PRECONDITION, ErrorKind.INVALID_REQUEST);

        public final GrpcStatus grpcStatus;
        public final ErrorKind httpKind;

        Reason(GrpcStatus grpcStatus, ErrorKind httpKind) {
            this.grpcStatus = grpcStatus;
            this.httpKind = httpKind;
        }
    }

    private final Reason reason;
    private final String param;

    public GenerationException(Reason reason, String message) {
        this(reason, null, message);
    }

    /** @param param the request field at fault, OpenAI's {@code param}; null when no single field is */
    public GenerationException(Reason reason, String param, String message) {
        super(message, null, false, false);
        this.reason = reason;
        this.param = param;
    }

    public Reason reason() {
        return reason;
    }

    public ApiException toApiException() {
        return new ApiException(reason.httpKind, param, getMessage());
    }
}
