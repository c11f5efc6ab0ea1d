package org.cocoonjvm.gateway;

import io.vertx.core.http.HttpClientResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.cocoonjvm.protocol.openai.SseParser;

/** Reads a Server-Sent Events body as a client does, noting when each event arrived. */
final class SseEvents {
    record Event(String data, long arrivedNanos) {}

    final List<Event> events = new ArrayList<>();
    final CompletableFuture<List<Event>> ended = new CompletableFuture<>();

    /** @param response paused, so that nothing was read before the handlers are in place */
    static SseEvents read(HttpClientResponse response) {
        SseEvents sse = new SseEvents();
        SseParser parser = new SseParser(1 << 20, data -> sse.add(new Event(data, System.nanoTime())));
        response.handler(parser);
        response.endHandler(v -> sse.ended.complete(sse.events));
        response.exceptionHandler(sse.ended::completeExceptionally);
        response.resume();
        return sse;
    }

    private synchronized void add(Event event) {
        events.add(event);
    }

    synchronized int size() {
        return events.size();
    }
}
