package org.cocoonjvm.protocol.openai;

import io.vertx.core.http.HttpServerResponse;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;

/**
 * Collects a generation and answers with one {@code chat.completion} JSON document. It holds the
 * whole text, which {@code max_tokens} and the context window bound.
 */
public final class JsonChatWriter extends ChatWriter {
    private final StringBuilder text = new StringBuilder();

    public JsonChatWriter(HttpServerResponse response, CompletionMeta meta) {
        super(response, meta);
    }

    @Override
    public void delta(Delta delta) {
        text.append(delta.getText());
    }

    @Override
    void complete(Final fin) {
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
}
