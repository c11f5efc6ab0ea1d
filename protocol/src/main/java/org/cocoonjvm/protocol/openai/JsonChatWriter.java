package org.cocoonjvm.protocol.openai;

import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerResponse;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;

/**
 * Collects a generation and answers with one {@code chat.completion} JSON document. It holds the
 * whole text, which {@code max_tokens} and the context window bound.
 */
public final class JsonChatWriter implements CompletionSink {
    private final HttpServerResponse response;
    private final CompletionMeta meta;
    private final StringBuilder text = new StringBuilder();
    private boolean ended;

    public JsonChatWriter(HttpServerResponse response, CompletionMeta meta) {
        this.response = response;
        this.meta = meta;
    }

    @Override
    public void delta(Delta delta) {
        text.append(delta.getText());
    }

    @Override
    public void finish(Final fin) {
        if (ended()) {
            return;
        }
        if (fin.getFinishReason() == FinishReason.FINISH_REASON_ERROR) {
            fail(new ApiException(ErrorKind.UPSTREAM, "The worker failed: " + fin.getError()));
            return;
        }
        StringBuilder body = new StringBuilder(text.length() + 320).append('{');
        meta.appendHeader(body, "chat.completion");
        body.append(",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        JsonText.appendString(body, text.toString());
        body.append(",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"")
                .append(CompletionSink.finishReason(fin)).append("\"}],\"usage\":");
        CompletionMeta.appendUsage(body, fin.getUsage()).append('}');
        ended = true;
        response.setStatusCode(200).putHeader("Content-Type", "application/json").end(body.toString());
    }

    @Override
    public void fail(ApiException error) {
        if (!ended()) {
            ended = true;
            OpenAiResponses.error(response, error);
        }
    }

    @Override
    public boolean committed() {
        return ended;
    }

    @Override
    public boolean ended() {
        return ended || response.closed();
    }

    @Override
    public boolean writeQueueFull() {
        return false;
    }

    @Override
    public void drainHandler(Handler<Void> handler) {
        // Never full: the text is held until the end, so there is nothing to wait for.
    }
}
