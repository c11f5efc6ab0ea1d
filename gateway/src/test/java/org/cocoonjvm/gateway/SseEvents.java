package org.cocoonjvm.gateway;

import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Collectors;
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

    /** The text a chat completion event adds; null for one that adds none (usage, an error, [DONE]). */
    static String content(Event event) {
        if (event.data().equals("[DONE]")) {
            return null;
        }
        JsonArray choices = new JsonObject(event.data()).getJsonArray("choices");
        return choices == null || choices.isEmpty() ? null : choices.getJsonObject(0).getJsonObject("delta").getString("content");
    }

    /** The completion's text: what the events add, in order. */
    static String text(List<Event> events) {
        return events.stream().map(SseEvents::content).filter(Objects::nonNull).collect(Collectors.joining());
    }

    private synchronized void add(Event event) {
        events.add(event);
    }

    synchronized int size() {
        return events.size();
    }
}
