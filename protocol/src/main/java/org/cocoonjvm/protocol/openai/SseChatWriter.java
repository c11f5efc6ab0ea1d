package org.cocoonjvm.protocol.openai;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;

/**
 * Writes a chat completion as OpenAI's {@code chat.completion.chunk} Server-Sent Events. Each
 * delta is one event, written (and so flushed) as soon as it arrives; the stream always ends with
 * {@code data: [DONE]}, after an error event if it failed midway.
 */
public final class SseChatWriter extends ChatWriter {
    private static final Buffer DONE = Buffer.buffer("data: [DONE]\n\n");

    private boolean committed;

    public SseChatWriter(HttpServerResponse response, CompletionMeta meta) {
        super(response, meta);
    }

    @Override
    public void delta(Delta delta) {
        if (ended() || delta.getText().isEmpty()) {
            return;
        }
        StringBuilder chunk = open();
        chunk.append("{\"index\":0,\"delta\":{");
        if (!committed) {
            chunk.append("\"role\":\"assistant\",");
        }
        chunk.append("\"content\":");
        JsonText.appendString(chunk, delta.getText());
        chunk.append("},\"logprobs\":null,\"finish_reason\":null}]");
        write(chunk);
    }

    @Override
    void complete(Final fin) {
        StringBuilder chunk = open();
        chunk.append("{\"index\":0,\"delta\":{");
        if (!committed) {
            chunk.append("\"role\":\"assistant\",\"content\":\"\"");
        }
        chunk.append("},\"logprobs\":null,\"finish_reason\":\"").append(CompletionSink.finishReason(fin)).append("\"}]");
        write(chunk);
        if (meta.includeUsage()) {
            StringBuilder usage = open();
            usage.append("],\"usage\":");
            CompletionMeta.appendUsage(usage, fin.getUsage());
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

    /** Starts an event up to the opening bracket of {@code choices}. */
    private StringBuilder open() {
        StringBuilder chunk = new StringBuilder(160).append("data: {");
        meta.appendHeader(chunk, "chat.completion.chunk");
        return chunk.append(",\"system_fingerprint\":null,\"choices\":[");
    }

    private void write(StringBuilder chunkWithoutClose) {
        if (!committed) {
            committed = true;
            response.setStatusCode(200)
                    .setChunked(true)
                    .putHeader("Content-Type", "text/event-stream; charset=utf-8")
                    .putHeader("Cache-Control", "no-cache")
                    .putHeader("X-Accel-Buffering", "no");
        }
        response.write(Buffer.buffer(chunkWithoutClose.append("}\n\n").toString()));
    }

    private void end() {
        ended = true;
        response.end(DONE);
    }
}
