package org.cocoonjvm.protocol.openai;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;

/** Plain (non-streamed) OpenAI responses shared by the gateway and the worker's HTTP API. */
public final class OpenAiResponses {
    private OpenAiResponses() {}

    /**
     * Whether the client should send the request again, as the official OpenAI SDKs read it before
     * their automatic retries: {@code false} where that cannot help or would be billed again,
     * {@code true} where {@code Retry-After} says when; absent where the SDK's own rule will do.
     */
    public static final String SHOULD_RETRY_HEADER = "x-should-retry";

    /** Ends {@code response} with a JSON document; see {@link #send}. */
    public static Future<Void> json(HttpServerResponse response, String document) {
        return send(response, "application/json", document);
    }

    /**
     * Ends {@code response} with {@code body}, its length stated: Vert.x states it for a GET but not
     * for a HEAD, which the routes answer as a GET without its body, and health checkers and caches
     * compare the two (audit S, S-7).
     */
    public static Future<Void> send(HttpServerResponse response, String contentType, String body) {
        Buffer bytes = Buffer.buffer(body);
        return response.putHeader(HttpHeaders.CONTENT_TYPE, contentType)
                .putHeader(HttpHeaders.CONTENT_LENGTH, Integer.toString(bytes.length()))
                .end(bytes);
    }

    /** @return the response's end, as {@link CompletionSink#finish}'s */
    public static Future<Void> error(HttpServerResponse response, ApiException error) {
        return error(response, error, error.toJson(), false);
    }

    /**
     * @param document the error document, with whatever goes beside {@code error} in it
     * @param billed   the failed request was billed for some usage: a retry would be billed again
     */
    static Future<Void> error(HttpServerResponse response, ApiException error, JsonObject document, boolean billed) {
        if (response.ended() || response.closed()) {
            return ResponseWriter.ALREADY_ENDED;
        }
        response.setStatusCode(error.kind().httpStatus);
        if (error.kind() == ErrorKind.AUTHENTICATION) {
            response.putHeader("WWW-Authenticate", "Bearer");
        }
        if (error.retryAfterSeconds() > 0) {
            response.putHeader("Retry-After", Integer.toString(error.retryAfterSeconds()));
        }
        if (billed || error.kind().retryFutile) {
            response.putHeader(SHOULD_RETRY_HEADER, "false");
        } else if (error.retryAfterSeconds() > 0) {
            response.putHeader(SHOULD_RETRY_HEADER, "true");
        }
        return json(response, document.encode());
    }

    public static ApiException asApiException(Throwable failure) {
        return failure instanceof ApiException api ? api : new ApiException(ErrorKind.INTERNAL, "Internal error.");
    }
}
