package org.cocoonjvm.protocol.openai;

/**
 * Every failure a client can see, with its HTTP status and OpenAI error type. This is the one
 * table that maps failures to status codes: handlers throw {@link ApiException} with a kind and
 * never pick a status themselves.
 */
public enum ErrorKind {
    INVALID_REQUEST(400, "invalid_request_error", null),
    AUTHENTICATION(401, "authentication_error", "invalid_api_key"),
    INSUFFICIENT_BALANCE(402, "insufficient_quota", "insufficient_balance"),
    PERMISSION(403, "permission_error", null),
    MODEL_NOT_FOUND(404, "invalid_request_error", "model_not_found"),
    NOT_FOUND(404, "invalid_request_error", "not_found"),
    PAYLOAD_TOO_LARGE(413, "invalid_request_error", "payload_too_large"),
    RATE_LIMITED(429, "rate_limit_error", "rate_limit_exceeded"),
    /** The worker failed, or answered with something the gateway can't forward. */
    UPSTREAM(502, "api_error", "upstream_error"),
    /** No worker can take the request right now: none registered, all full or draining. */
    NO_CAPACITY(503, "api_error", "no_capacity"),
    /** The request ran past its deadline. */
    TIMEOUT(504, "api_error", "timeout"),
    INTERNAL(500, "api_error", "internal_error");

    public final int httpStatus;
    public final String type;
    /** OpenAI's machine-readable {@code code}; null where OpenAI sends null. */
    public final String code;

    ErrorKind(int httpStatus, String type, String code) {
        this.httpStatus = httpStatus;
        this.type = type;
        this.code = code;
    }
}
