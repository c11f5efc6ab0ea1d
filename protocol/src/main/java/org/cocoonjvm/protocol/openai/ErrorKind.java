package org.cocoonjvm.protocol.openai;

import io.vertx.grpc.common.GrpcStatus;

/**
 * Every failure a client can see, with its HTTP status, OpenAI error type, gRPC status (for the
 * backend {@code Inference} API) and whether sending it again can help. This is the one table
 * that maps failures to status codes: handlers throw {@link ApiException} with a kind and never
 * pick a status themselves.
 *
 * <p>gRPC choices that are not one-to-one: an insufficient balance is {@code FAILED_PRECONDITION},
 * not {@code RESOURCE_EXHAUSTED}, because retrying cannot help until the account is topped up,
 * while clients and gRPC retry policies treat {@code RESOURCE_EXHAUSTED} as "back off and retry"
 * (it is what rate limits send, with {@code retry-after}). A failed worker is {@code UNAVAILABLE}:
 * transient, another attempt may reach a healthy worker.
 *
 * <p>{@link #retryFutile}: the same request sent again fails the same way, so HTTP answers say
 * {@code x-should-retry: false}, the header the official OpenAI SDKs obey before their automatic
 * retries (which otherwise cover 408, 409, 429 and every 5xx). A timeout is among them: the same
 * request meets the same deadline, and each attempt is billed for what its worker produced.
 */
public enum ErrorKind {
    INVALID_REQUEST(400, "invalid_request_error", null, GrpcStatus.INVALID_ARGUMENT, true),
    /** The prompt, with max_tokens, does not fit the model's context window (the worker knows it). */
    CONTEXT_LENGTH_EXCEEDED(400, "invalid_request_error", "context_length_exceeded", GrpcStatus.INVALID_ARGUMENT, true),
    AUTHENTICATION(401, "authentication_error", "invalid_api_key", GrpcStatus.UNAUTHENTICATED, true),
    INSUFFICIENT_BALANCE(402, "insufficient_quota", "insufficient_balance", GrpcStatus.FAILED_PRECONDITION, true),
    MODEL_NOT_FOUND(404, "invalid_request_error", "model_not_found", GrpcStatus.NOT_FOUND, true),
    NOT_FOUND(404, "invalid_request_error", "not_found", GrpcStatus.NOT_FOUND, true),
    /** A known path asked with a method it does not answer; the response says which it does. */
    METHOD_NOT_ALLOWED(405, "invalid_request_error", "method_not_allowed", GrpcStatus.UNIMPLEMENTED, true),
    /** The request's body did not arrive in time. */
    REQUEST_TIMEOUT(408, "invalid_request_error", "request_timeout", GrpcStatus.DEADLINE_EXCEEDED, false),
    /** gRPC libraries answer an oversized message with RESOURCE_EXHAUSTED too. */
    PAYLOAD_TOO_LARGE(413, "invalid_request_error", "payload_too_large", GrpcStatus.RESOURCE_EXHAUSTED, true),
    /**
     * A request line longer than the gateway reads (HTTP/1), refused before any route. gRPC never
     * sees it: over HTTP/2 an oversized header block resets the stream.
     */
    URI_TOO_LONG(414, "invalid_request_error", "uri_too_long", GrpcStatus.INVALID_ARGUMENT, true),
    /** Request headers larger than the gateway reads (HTTP/1), refused before any route. */
    HEADERS_TOO_LARGE(431, "invalid_request_error", "headers_too_large", GrpcStatus.RESOURCE_EXHAUSTED, true),
    /**
     * A request body or message compressed in a way the gateway does not read. UNIMPLEMENTED is
     * what the gRPC compression spec asks for; the answer names the encodings accepted.
     */
    UNSUPPORTED_ENCODING(415, "invalid_request_error", "unsupported_encoding", GrpcStatus.UNIMPLEMENTED, true),
    RATE_LIMITED(429, "rate_limit_error", "rate_limit_exceeded", GrpcStatus.RESOURCE_EXHAUSTED, false),
    /** The worker failed, or answered with something the gateway can't forward. */
    UPSTREAM(502, "api_error", "upstream_error", GrpcStatus.UNAVAILABLE, false),
    /** No worker can take the request right now: none registered, all full or draining. */
    NO_CAPACITY(503, "api_error", "no_capacity", GrpcStatus.UNAVAILABLE, false),
    /**
     * The gateway is stopping: a request it will not take, or one still running when its shutdown
     * grace ran out. Another gateway (or this one, restarted) can serve it.
     */
    SHUTTING_DOWN(503, "api_error", "shutting_down", GrpcStatus.UNAVAILABLE, false),
    /**
     * The gateway cannot reach its ledger (the database is down, restarting or failing over), so it
     * can neither hold funds for a request nor read an account. Transient: sent with a retry hint.
     */
    LEDGER_UNAVAILABLE(503, "api_error", "ledger_unavailable", GrpcStatus.UNAVAILABLE, false),
    /** The request ran past its deadline. */
    TIMEOUT(504, "api_error", "timeout", GrpcStatus.DEADLINE_EXCEEDED, true),
    /**
     * An HTTP/1 request line with a version the gateway does not serve (HTTP/0.9, HTTP/2.0 as
     * text, another protocol's name), refused before any route. gRPC never sees it.
     */
    HTTP_VERSION_NOT_SUPPORTED(505, "invalid_request_error", "http_version_not_supported", GrpcStatus.UNIMPLEMENTED, true),
    INTERNAL(500, "api_error", "internal_error", GrpcStatus.INTERNAL, false);

    public final int httpStatus;
    public final String type;
    /** OpenAI's machine-readable {@code code}; null where OpenAI sends null. */
    public final String code;
    public final GrpcStatus grpcStatus;
    /** Sending the same request again cannot help: it (or its account) is at fault, or it would meet the same deadline. */
    public final boolean retryFutile;

    ErrorKind(int httpStatus, String type, String code, GrpcStatus grpcStatus, boolean retryFutile) {
        this.httpStatus = httpStatus;
        this.type = type;
        this.code = code;
        this.grpcStatus = grpcStatus;
        this.retryFutile = retryFutile;
    }

    /** A stable machine-readable name: OpenAI's {@code code}, or its {@code type} where the code is null. */
    public String stableCode() {
        return code != null ? code : type;
    }

    /** The kind with this {@link #stableCode()}; null for none. */
    public static ErrorKind ofStableCode(String stableCode) {
        for (ErrorKind kind : values()) {
            if (kind.stableCode().equals(stableCode)) {
                return kind;
            }
        }
        return null;
    }
}
