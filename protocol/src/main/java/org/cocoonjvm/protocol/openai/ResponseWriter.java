package org.cocoonjvm.protocol.openai;

import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerResponse;
import org.cocoonjvm.protocol.grpc.Final;

/** What the SSE and JSON writers share: the response, its end state, and how a worker error ends it. */
abstract sealed class ResponseWriter implements CompletionSink permits SseWriter, JsonWriter {
    final HttpServerResponse response;
    final CompletionMeta meta;
    boolean ended;

    ResponseWriter(HttpServerResponse response, CompletionMeta meta) {
        this.response = response;
        this.meta = meta;
    }

    @Override
    public final void finish(Final fin, UsageCost cost) {
        if (ended()) {
            return;
        }
        ApiException failure = CompletionSink.failureOf(fin);
        if (failure != null) {
            fail(failure, fin.getUsage(), cost);
        } else {
            complete(fin, cost);
        }
    }

    /** Writes the successful end of the response. */
    abstract void complete(Final fin, UsageCost cost);

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
