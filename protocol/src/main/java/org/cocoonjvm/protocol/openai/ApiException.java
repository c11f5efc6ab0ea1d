package org.cocoonjvm.protocol.openai;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonObject;

/** A failure to report to an OpenAI-compatible client, as {@code {"error":{...}}}. */
public final class ApiException extends RuntimeException {
    private final ErrorKind kind;
    private final String param;
    private final int retryAfterSeconds;

    public ApiException(ErrorKind kind, String message) {
        this(kind, null, message);
    }

    public ApiException(ErrorKind kind, String param, String message) {
        this(kind, param, message, 0);
    }

    /** @param retryAfterSeconds sent as {@code Retry-After}; 0 sends none */
    public ApiException(ErrorKind kind, String param, String message, int retryAfterSeconds) {
        super(message, null, false, false);
        this.kind = kind;
        this.param = param;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** A 429 or 503 that tells the client when to come back. */
    public static ApiException retryLater(ErrorKind kind, String message, int retryAfterSeconds) {
        return new ApiException(kind, null, message, Math.max(1, retryAfterSeconds));
    }

    /** Longest value a message echoes: a client's whole 4 MB string is no help in its error. */
    private static final int MOST_SHOWN_CHARS = 64;

    /** A client's value as a message shows it: as JSON (a string quoted), cut short past {@value #MOST_SHOWN_CHARS} characters. */
    public static String shown(Object value) {
        String json = Json.encode(value);
        return json.length() <= MOST_SHOWN_CHARS ? json : json.substring(0, MOST_SHOWN_CHARS) + "…";
    }

    public static ApiException invalid(String param, String message) {
        return new ApiException(ErrorKind.INVALID_REQUEST, param, message);
    }

    public ErrorKind kind() {
        return kind;
    }

    /** The request field at fault, OpenAI's {@code param}; null when no single field is. */
    public String param() {
        return param;
    }

    public int retryAfterSeconds() {
        return retryAfterSeconds;
    }

    public JsonObject toJson() {
        return new JsonObject().put("error", new JsonObject()
                .put("message", getMessage())
                .put("type", kind.type)
                .put("param", param)
                .put("code", kind.code));
    }
}
