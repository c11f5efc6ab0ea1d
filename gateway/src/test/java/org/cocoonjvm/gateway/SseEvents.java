package org.cocoonjvm.gateway;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Reads a Server-Sent Events body as a client does: split on blank lines, never per transport
 * read, and note when each event arrived.
 */
final class SseEvents {
    record Event(String data, long arrivedNanos) {}

    final List<Event> events = new ArrayList<>();
    final List<String> comments = new ArrayList<>();
    final CompletableFuture<List<Event>> ended = new CompletableFuture<>();
    private final StringBuilder pending = new StringBuilder();

    /** @param response paused, so that nothing was read before the handlers are in place */
    static SseEvents read(HttpClientResponse response) {
        SseEvents sse = new SseEvents();
        response.handler(sse::onBuffer);
        response.endHandler(v -> sse.ended.complete(sse.events));
        response.exceptionHandler(sse.ended::completeExceptionally);
        response.resume();
        return sse;
    }

    private synchronized void onBuffer(Buffer buffer) {
        long now = System.nanoTime();
        pending.append(buffer.toString());
        for (int end; (end = pending.indexOf("\n\n")) >= 0; ) {
            String block = pending.substring(0, end);
            pending.delete(0, end + 2);
            for (String line : block.split("\n")) {
                if (line.startsWith("data: ")) {
                    events.add(new Event(line.substring(6), now));
                } else if (line.startsWith(":")) {
                    comments.add(line);
                }
            }
        }
    }

    synchronized int size() {
        return events.size();
    }
}
