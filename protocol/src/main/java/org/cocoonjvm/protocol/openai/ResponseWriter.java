package org.cocoonjvm.protocol.openai;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.transport.Abort;

/** What the SSE and JSON writers share: the response, its end state, and how a worker error ends it. */
abstract sealed class ResponseWriter implements CompletionSink permits SseWriter, JsonWriter {
    final HttpServerResponse response;
    /** The response's connection, dropped whole when an HTTP/1 response is abandoned. */
    private final HttpConnection connection;
    final CompletionMeta meta;
    boolean ended;

    ResponseWriter(HttpServerRequest request, CompletionMeta meta) {
        this.response = request.response();
        this.connection = request.connection();
        this.meta = meta;
    }

    /** What {@code finish} and {@code fail} return for a response that has nothing more to write. */
    static final Future<Void> ALREADY_ENDED = Future.failedFuture("the response had already ended or closed");

    @Override
    public final Future<Void> finish(Final fin, UsageCost cost) {
        if (ended()) {
            return ALREADY_ENDED;
        }
        ApiException failure = CompletionSink.failureOf(fin);
        return failure != null ? fail(failure, fin.getUsage(), cost) : complete(fin, cost);
    }

    /** Writes the successful end of the response; returns the end's write. */
    abstract Future<Void> complete(Final fin, UsageCost cost);

    /**
     * A failure told before any status went out: the error document, with the usage beside it when
     * the failed request was billed for some (a worker that failed midway, or one that processed
     * the prompt before it failed and no other worker took the request), as a stream's usage chunk
     * would say. OpenAI's clients read {@code error} and ignore the rest.
     */
    final Future<Void> errorDocument(ApiException error, Usage usage, UsageCost cost) {
        if (usage == null || cost == null || cost.totalCost() == 0) {
            return OpenAiResponses.error(response, error);
        }
        JsonObject billed = new JsonObject(CompletionMeta.appendUsage(new StringBuilder(256), usage, cost).toString());
        return OpenAiResponses.error(response, error, error.toJson().put("usage", billed), true);
    }

    @Override
    public final void abandon() {
        ended = true;
        // An HTTP/2 stream's reset frees what its flow control holds; HTTP/1's reset is a close,
        // which would wait to flush the very bytes the client is not reading.
        if (response.streamId() >= 0) {
            response.reset();
        } else {
            Abort.connection(connection);
        }
    }

    @Override
    public final boolean ended() {
        return ended || response.closed();
    }

    @Override
    public final boolean writeQueueFull() {
        return response.writeQueueFull();
    }

    @Override
    public final void drainHandler(Handler<Void> handler) {
        response.drainHandler(handler);
    }
}
