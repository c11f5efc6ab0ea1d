package org.cocoonjvm.protocol.openai;

import io.vertx.core.MultiMap;
import io.vertx.grpc.client.GrpcClientResponse;

/**
 * An {@link ApiException}'s details as gRPC trailers, for what a status and its message cannot
 * say: the stable code ({@code context_length_exceeded}), the field at fault and when to retry.
 * The gateway's {@code Inference} API sends them to its clients, and a worker to its gateway, so
 * that a refusal keeps its code and param on the way through, and so that a worker's own refusal
 * can be told from one that gRPC made for it (an oversized message is {@code RESOURCE_EXHAUSTED}
 * with no trailers, like a busy worker's status).
 */
public final class ErrorTrailers {
    public static final String CODE = "cocoon-error";
    public static final String PARAM = "cocoon-error-param";
    public static final String RETRY_AFTER = "retry-after";

    private ErrorTrailers() {}

    /** Sets the error's trailers; call before ending the response. */
    public static void write(MultiMap trailers, ApiException error) {
        trailers.set(CODE, error.kind().stableCode());
        if (error.param() != null) {
            trailers.set(PARAM, error.param());
        }
        if (error.retryAfterSeconds() > 0) {
            trailers.set(RETRY_AFTER, Integer.toString(error.retryAfterSeconds()));
        }
    }

    /** The kind the peer named; null when it named none (or one this side does not know). */
    public static ErrorKind kind(GrpcClientResponse<?, ?> response) {
        String code = read(response, CODE);
        return code == null ? null : ErrorKind.ofStableCode(code);
    }

    public static String param(GrpcClientResponse<?, ?> response) {
        return read(response, PARAM);
    }

    /** A call refused before any message is answered trailers-only: its trailers come as headers. */
    private static String read(GrpcClientResponse<?, ?> response, String name) {
        String value = response.trailers() == null ? null : response.trailers().get(name);
        return value != null ? value : response.headers().get(name);
    }
}
