package org.cocoonjvm.protocol.openai;

import io.vertx.core.Future;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.Usage;

/**
 * Collects a generation and answers with one {@code chat.completion} or {@code text_completion}
 * JSON document. It holds the whole text, which {@code max_tokens} and the context window bound.
 */
public final class JsonWriter extends ResponseWriter {
    private final StringBuilder text = new StringBuilder();

    /** Answers {@code request}. */
    public JsonWriter(HttpServerRequest request, CompletionMeta meta) {
        super(request, meta);
    }

    @Override
    public void delta(Delta delta) {
        text.append(delta.getText());
    }

    @Override
    public void keepAlive() {
        // A JSON document has nothing to say until it is complete.
    }

    @Override
    Future<Void> complete(Final fin, UsageCost cost) {
        StringBuilder body = new StringBuilder(text.length() + 384).append('{');
        meta.appendHeader(body, meta.flavor().documentObject);
        body.append(",\"system_fingerprint\":null,\"choices\":[{\"index\":0,");
        if (meta.flavor() == CompletionMeta.Flavor.CHAT) {
            body.append("\"message\":{\"role\":\"assistant\",\"content\":");
            JsonText.appendString(body, text.toString());
            body.append(",\"refusal\":null},");
        } else {
            body.append("\"text\":");
            JsonText.appendString(body, text.toString());
            body.append(',');
        }
        body.append("\"logprobs\":null,\"finish_reason\":\"").append(CompletionSink.finishReason(fin)).append("\"}],\"usage\":");
        CompletionMeta.appendUsage(body, fin.getUsage(), cost).append('}');
        ended = true;
        return OpenAiResponses.json(response.setStatusCode(200), body.toString());
    }

    @Override
    public Future<Void> fail(ApiException error, Usage usage, UsageCost cost) {
        if (ended()) {
            return ALREADY_ENDED;
        }
        ended = true;
        return errorDocument(error, usage, cost);
    }

    @Override
    public boolean committed() {
        return ended;
    }
}
