package org.cocoonjvm.protocol.openai;

import io.vertx.core.Future;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;

/** Plain (non-streamed) OpenAI responses shared by the gateway and the worker's HTTP API. */
public final class OpenAiResponses {
    private OpenAiResponses() {}

    /** @return the response's end, as {@link CompletionSink#finish}'s */
    public static Future<Void> error(HttpServerResponse response, ApiException error) {
        return error(response, error, error.toJson());
    }

    /** @param document the error document, with whatever goes beside {@code error} in it */
    static Future<Void> error(HttpServerResponse response, ApiException error, JsonObject document) {
        if (response.ended() || response.closed()) {
            return ResponseWriter.ALREADY_ENDED;
        }
        response.setStatusCode(error.kind().httpStatus).putHeader("Content-Type", "application/json");
        if (error.kind() == ErrorKind.AUTHENTICATION) {
            response.putHeader("WWW-Authenticate", "Bearer");
        }
        if (error.retryAfterSeconds() > 0) {
            response.putHeader("Retry-After", Integer.toString(error.retryAfterSeconds()));
        }
        return response.end(document.encode());
    }

    public static ApiException asApiException(Throwable failure) {
        return failure instanceof ApiException api ? api : new ApiException(ErrorKind.INTERNAL, "Internal error.");
    }
}
