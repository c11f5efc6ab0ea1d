package org.cocoonjvm.protocol.openai;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.impl.buffer.VertxByteBufAllocator;
import io.vertx.core.internal.buffer.BufferInternal;
import java.nio.charset.StandardCharsets;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;

/**
 * Writes a completion as OpenAI's Server-Sent Events ({@code chat.completion.chunk} or
 * {@code text_completion} objects). Each delta is one event, written (and so flushed) as soon as
 * it arrives; the stream always ends with {@code data: [DONE]}, after an error event if it failed
 * midway.
 */
public final class SseWriter extends ResponseWriter {
    private static final Buffer DONE = Buffer.buffer("data: [DONE]\n\n");
    private static final Buffer KEEP_ALIVE = Buffer.buffer(": keep-alive\n\n");

    private boolean committed;
    /** Whether a content delta went out (the first carries the assistant role). */
    private boolean sentContent;
    /**
     * Every event's bytes up to {@code choices}: id, object, created and model never change within
     * a stream, and escaping them again for each token was a tenth of the gateway's CPU on short requests.
     */
    private byte[] chunkStart;
    /** The rest of the event being built; one per stream, reused for every event. */
    private final StringBuilder chunkRest = new StringBuilder(256);

    public SseWriter(HttpServerResponse response, CompletionMeta meta) {
        super(response, meta);
    }

    @Override
    public void delta(Delta delta) {
        if (ended() || delta.getText().isEmpty()) {
            return;
        }
        StringBuilder chunk = open();
        if (meta.flavor() == CompletionMeta.Flavor.CHAT) {
            chunk.append("{\"index\":0,\"delta\":{");
            if (!sentContent) {
                chunk.append("\"role\":\"assistant\",");
            }
            chunk.append("\"content\":");
            JsonText.appendString(chunk, delta.getText());
            chunk.append("},\"logprobs\":null,\"finish_reason\":null}]");
        } else {
            chunk.append("{\"index\":0,\"text\":");
            JsonText.appendString(chunk, delta.getText());
            chunk.append(",\"logprobs\":null,\"finish_reason\":null}]");
        }
        sentContent = true;
        write(chunk);
    }

    @Override
    public void keepAlive() {
        if (!ended()) {
            commit();
            response.write(KEEP_ALIVE);
        }
    }

    @Override
    void complete(Final fin, UsageCost cost) {
        StringBuilder chunk = open();
        if (meta.flavor() == CompletionMeta.Flavor.CHAT) {
            chunk.append("{\"index\":0,\"delta\":{");
            if (!sentContent) {
                chunk.append("\"role\":\"assistant\",\"content\":\"\"");
            }
            chunk.append("}");
        } else {
            chunk.append("{\"index\":0,\"text\":\"\"");
        }
        chunk.append(",\"logprobs\":null,\"finish_reason\":\"").append(CompletionSink.finishReason(fin)).append("\"}]");
        write(chunk);
        if (meta.includeUsage()) {
            StringBuilder usage = open();
            usage.append("],\"usage\":");
            CompletionMeta.appendUsage(usage, fin.getUsage(), cost);
            write(usage);
        }
        end();
    }

    @Override
    public void fail(ApiException error) {
        if (ended()) {
            return;
        }
        if (!committed) {
            ended = true;
            OpenAiResponses.error(response, error);
            return;
        }
        response.write(Buffer.buffer("data: " + error.toJson().encode() + "\n\n"));
        end();
    }

    @Override
    public boolean committed() {
        return committed;
    }

    /** Starts an event after the opening bracket of {@code choices}: what comes before is {@link #chunkStart}. */
    private StringBuilder open() {
        if (chunkStart == null) {
            StringBuilder start = new StringBuilder(160).append("data: {");
            meta.appendHeader(start, meta.flavor().chunkObject);
            chunkStart = start.append(",\"system_fingerprint\":null,\"choices\":[").toString().getBytes(StandardCharsets.UTF_8);
        }
        chunkRest.setLength(0);
        return chunkRest;
    }

    /**
     * Encodes the event straight into the buffer the connection writes. Going through a String and
     * its byte[] made three copies of every event, the largest share of what the gateway allocated
     * per token.
     */
    private void write(StringBuilder rest) {
        commit();
        rest.append("}\n\n");
        ByteBuf event = VertxByteBufAllocator.DEFAULT.heapBuffer(chunkStart.length + ByteBufUtil.utf8Bytes(rest));
        event.writeBytes(chunkStart);
        ByteBufUtil.writeUtf8(event, rest);
        response.write(BufferInternal.buffer(event));
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

    private void end() {
        ended = true;
        response.end(DONE);
    }
}
