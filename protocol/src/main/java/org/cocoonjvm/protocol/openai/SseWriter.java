package org.cocoonjvm.protocol.openai;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import io.vertx.core.impl.buffer.VertxByteBufAllocator;
import io.vertx.core.internal.buffer.BufferInternal;
import java.nio.charset.StandardCharsets;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.Usage;

/**
 * Writes a completion as OpenAI's Server-Sent Events ({@code chat.completion.chunk} or
 * {@code text_completion} objects). Each delta is one event, written (and so flushed) as soon as
 * it arrives; the stream always ends with {@code data: [DONE]}, after an error event if it failed
 * midway.
 */
public final class SseWriter extends ResponseWriter {
    private static final byte[] DONE_BYTES = ascii("data: [DONE]\n\n");
    private static final Buffer KEEP_ALIVE = Buffer.buffer(": keep-alive\n\n");
    private static final byte[] CHAT_FIRST_DELTA = ascii("{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":");
    private static final byte[] CHAT_DELTA = ascii("{\"index\":0,\"delta\":{\"content\":");
    private static final byte[] CHAT_DELTA_END = ascii("},\"logprobs\":null,\"finish_reason\":null}]");
    private static final byte[] TEXT_DELTA = ascii("{\"index\":0,\"text\":");
    private static final byte[] TEXT_DELTA_END = ascii(",\"logprobs\":null,\"finish_reason\":null}]");
    private static final byte[] EVENT_END = ascii("}\n\n");
    private static final byte[] USAGE = ascii(",\"usage\":");

    private boolean committed;
    /** Whether a content delta went out (the first carries the assistant role). */
    private boolean sentContent;
    /**
     * Every event's bytes up to {@code choices}: id, object, created and model never change within
     * a stream, and escaping them again for each token was a tenth of the gateway's CPU on short requests.
     */
    private byte[] chunkStart;

    /** Answers {@code request}. */
    public SseWriter(HttpServerRequest request, CompletionMeta meta) {
        super(request, meta);
    }

    @Override
    public void delta(Delta delta) {
        delta(delta, null);
    }

    @Override
    public void delta(Delta delta, Usage running) {
        String text = delta.getText();
        if (ended() || text.isEmpty()) {
            return;
        }
        // The one event per token: constant parts as bytes, the text escaped straight into the buffer.
        byte[] start = chunkStart();
        boolean chat = meta.flavor() == CompletionMeta.Flavor.CHAT;
        byte[] before = chat ? (sentContent ? CHAT_DELTA : CHAT_FIRST_DELTA) : TEXT_DELTA;
        byte[] after = chat ? CHAT_DELTA_END : TEXT_DELTA_END;
        // Sized for this event's parts and the text as UTF-8 (three bytes a char at most), not for
        // the longest parts and the worst escapes: every token's buffer is garbage the moment it is
        // written, and only text full of control characters, rare in a model's output, outgrows it.
        ByteBuf event = VertxByteBufAllocator.DEFAULT.heapBuffer(start.length + before.length + 2 + 3 * text.length()
                + after.length + EVENT_END.length);
        event.writeBytes(start).writeBytes(before);
        JsonText.writeString(event, text);
        event.writeBytes(after);
        if (running != null) {
            event.writeBytes(USAGE);
            ByteBufUtil.writeUtf8(event, CompletionMeta.appendUsage(new StringBuilder(192), running, null));
        }
        event.writeBytes(EVENT_END);
        sentContent = true;
        send(event);
    }

    @Override
    public void keepAlive() {
        if (!ended()) {
            commit();
            response.write(KEEP_ALIVE);
        }
    }

    /**
     * The finish-reason event, the usage event and {@code [DONE]} leave in one write that ends the
     * response: as three writes and an end, they were a tenth of the gateway's event-loop CPU on
     * two-token replies.
     */
    @Override
    Future<Void> complete(Final fin, UsageCost cost) {
        // The stream's last events, less the chunkStart each begins with.
        StringBuilder events = new StringBuilder(256);
        if (meta.flavor() == CompletionMeta.Flavor.CHAT) {
            events.append("{\"index\":0,\"delta\":{");
            if (!sentContent) {
                events.append("\"role\":\"assistant\",\"content\":\"\"");
            }
            events.append("}");
        } else {
            events.append("{\"index\":0,\"text\":\"\"");
        }
        events.append(",\"logprobs\":null,\"finish_reason\":\"").append(CompletionSink.finishReason(fin)).append("\"}]");
        if (meta.usage() == CompletionMeta.UsageReport.FINISH_CHUNK) {
            CompletionMeta.appendUsage(events.append(",\"usage\":"), fin.getUsage(), cost);
        }
        events.append("}\n\n");
        int finishEnd = events.length();
        if (meta.usage() == CompletionMeta.UsageReport.OWN_CHUNK) {
            appendUsageEvent(events, fin.getUsage(), cost);
        }
        byte[] start = chunkStart();
        ByteBuf last = VertxByteBufAllocator.DEFAULT.heapBuffer(2 * start.length + ByteBufUtil.utf8MaxBytes(events) + DONE_BYTES.length);
        last.writeBytes(start);
        ByteBufUtil.writeUtf8(last, events, 0, finishEnd);
        if (finishEnd < events.length()) {
            last.writeBytes(start);
            ByteBufUtil.writeUtf8(last, events, finishEnd, events.length());
        }
        last.writeBytes(DONE_BYTES);
        commit();
        ended = true;
        return response.end(BufferInternal.buffer(last));
    }

    /**
     * Before the status went out, the error document (as a non-streaming request's); after, the
     * usage so far (its own chunk, or in the error event: {@link CompletionMeta.UsageReport}), the
     * error event and {@code [DONE]}, in one write that ends the response.
     */
    @Override
    public Future<Void> fail(ApiException error, Usage usage, UsageCost cost) {
        if (ended()) {
            return ALREADY_ENDED;
        }
        ended = true;
        if (!committed) {
            return errorDocument(error, usage, cost);
        }
        ByteBuf last = VertxByteBufAllocator.DEFAULT.heapBuffer(512);
        JsonObject errorEvent = error.toJson();
        if (usage != null && meta.usage() == CompletionMeta.UsageReport.OWN_CHUNK) {
            last.writeBytes(chunkStart());
            ByteBufUtil.writeUtf8(last, appendUsageEvent(new StringBuilder(256), usage, cost));
        } else if (usage != null && meta.usage() == CompletionMeta.UsageReport.FINISH_CHUNK) {
            errorEvent.put("usage", new JsonObject(CompletionMeta.appendUsage(new StringBuilder(256), usage, cost).toString()));
        }
        ByteBufUtil.writeUtf8(last, "data: " + errorEvent.encode() + "\n\n");
        last.writeBytes(DONE_BYTES);
        return response.end(BufferInternal.buffer(last));
    }

    @Override
    public boolean committed() {
        return committed;
    }

    /** Every event's bytes up to the opening bracket of {@code choices}. */
    private byte[] chunkStart() {
        if (chunkStart == null) {
            StringBuilder start = new StringBuilder(160).append("data: {");
            meta.appendHeader(start, meta.flavor().chunkObject);
            chunkStart = start.append(",\"system_fingerprint\":null,\"choices\":[").toString().getBytes(StandardCharsets.UTF_8);
        }
        return chunkStart;
    }

    /**
     * Events go out in the buffer they were encoded into. Going through a String and its byte[]
     * made three copies of every event, the largest share of what the gateway allocated per token.
     */
    private void send(ByteBuf event) {
        commit();
        response.write(BufferInternal.buffer(event));
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private void commit() {
        if (!committed) {
            committed = true;
            response.setStatusCode(200)
                    .setChunked(true)
                    .putHeader("Content-Type", "text/event-stream; charset=utf-8")
                    .putHeader("Cache-Control", "no-cache")
                    .putHeader("X-Accel-Buffering", "no");
        }
    }

    /** The usage event, less the chunkStart it begins with. */
    private static StringBuilder appendUsageEvent(StringBuilder events, Usage usage, UsageCost cost) {
        events.append("],\"usage\":");
        CompletionMeta.appendUsage(events, usage, cost);
        return events.append("}\n\n");
    }
}
