package org.cocoonjvm.protocol.openai;

import io.vertx.core.json.JsonObject;

/** A failure to report to an OpenAI-compatible client, as {@code {"error":{...}}}. */
public final class ApiException extends RuntimeException {
    private final ErrorKind kind;
    private final String param;

    public ApiException(ErrorKind kind, String message) {
        this(kind, null, message);
    }

    public ApiException(ErrorKind kind, String param, String message) {
        super(message, null, false, false);
        this.kind = kind;
        this.param = param;
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

    public JsonObject toJson() {
        return new JsonObject().put("error", new JsonObject()
                .put("message", getMessage())
                .put("type", kind.type)
                .put("param", param)
                .put("code", kind.code));
    }
}
