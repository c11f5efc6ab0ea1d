package org.cocoonjvm.worker.forward;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.SamplingParams;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.worker.scheduler.GenerationException;

/**
 * The upstream's side of the OpenAI wire format, as the forwarder speaks it: the request it sends,
 * what a refusal's status means for the gateway, and what a stream chunk carries (its text, and
 * its usage in whichever dialect the server reports it). Pure functions, apart from the streams
 * they serve, so each server's quirks read in one place.
 */
final class UpstreamJson {
    private UpstreamJson() {
    }

    /** The upstream request: the client's, with streaming and usage forced on. */
    static JsonObject body(GenerateRequest request, ForwarderOptions options) {
        JsonObject streamOptions = new JsonObject().put("include_usage", true);
        JsonObject body = new JsonObject().put("model", options.upstreamModel()).put("stream", true)
                .put("stream_options", streamOptions);
        if (options.runningUsage()) {
            streamOptions.put("continuous_usage_stats", true);
            body.put("timings_per_token", true);
        }
        if (request.hasChat()) {
            JsonArray messages = new JsonArray();
            for (ChatMessage m : request.getChat().getMessagesList()) {
                messages.add(new JsonObject().put("role", m.getRole()).put("content", m.getContent()));
            }
            body.put("messages", messages);
        } else {
            body.put("prompt", request.getPrompt());
        }
        if (request.getMaxTokens() > 0) {
            body.put("max_tokens", request.getMaxTokens());
        }
        SamplingParams s = request.getSampling();
        body.put("temperature", s.getTemperature());
        if (s.getTopP() > 0 && s.getTopP() < 1) {
            body.put("top_p", s.getTopP());
        }
        if (s.getTopK() > 0) {
            body.put("top_k", s.getTopK());  // not OpenAI's, but vLLM, SGLang and llama.cpp take it
        }
        if (s.hasSeed()) {
            body.put("seed", s.getSeed());
        }
        if (s.getPresencePenalty() != 0) {
            body.put("presence_penalty", s.getPresencePenalty());
        }
        if (s.getFrequencyPenalty() != 0) {
            body.put("frequency_penalty", s.getFrequencyPenalty());
        }
        if (request.getStopCount() > 0) {
            body.put("stop", new JsonArray(request.getStopList()));
        }
        return body;
    }

    /**
     * The one table from the upstream's refusal to the worker's: the request's fault fails it
     * everywhere; "busy" sends it elsewhere without blame; anything else (a 5xx, a 401 for a wrong
     * key) means this worker cannot serve, which the gateway's circuit breaker counts.
     */
    static GenerationException refusal(int status) {
        return switch (status) {
            case 400, 413, 422 -> new GenerationException(GenerationException.Reason.INVALID_ARGUMENT,
                    "The upstream server rejected the request (HTTP " + status + ").");
            case 404 -> new GenerationException(GenerationException.Reason.MODEL_NOT_FOUND,
                    "The upstream server does not serve the configured model (HTTP 404).");
            case 429, 503 -> new GenerationException(GenerationException.Reason.OVERLOADED,
                    "The upstream server is busy (HTTP " + status + ").");
            default -> new GenerationException(GenerationException.Reason.UPSTREAM_FAILED,
                    "The upstream server failed the request (HTTP " + status + ").");
        };
    }

    /**
     * The counts a chunk reports: its {@code usage} (OpenAI's, and vLLM's running usage), else
     * llama.cpp's {@code timings}, whose prompt count leaves out what its prompt cache held;
     * null for neither, or for timings without a prompt count yet (llama.cpp's -1).
     */
    static Usage counts(JsonObject chunk) {
        JsonObject u = chunk.getJsonObject("usage");
        if (u != null) {
            JsonObject details = u.getJsonObject("prompt_tokens_details");
            return Usage.newBuilder().setPromptTokens(u.getInteger("prompt_tokens", 0))
                    .setCompletionTokens(u.getInteger("completion_tokens", 0))
                    .setCachedTokens(details == null ? 0 : details.getInteger("cached_tokens", 0)).build();
        }
        JsonObject t = chunk.getJsonObject("timings");
        if (t == null || t.getInteger("prompt_n", -1) < 0 || t.getInteger("predicted_n", -1) < 0) {
            return null;
        }
        int cached = Math.max(0, t.getInteger("cache_n", 0));
        return Usage.newBuilder().setPromptTokens(cached + t.getInteger("prompt_n"))
                .setCompletionTokens(t.getInteger("predicted_n")).setCachedTokens(cached).build();
    }

    /** A chat chunk's content or a completion chunk's text; empty for none. */
    static String text(JsonObject choice) {
        if (choice == null) {
            return "";
        }
        JsonObject delta = choice.getJsonObject("delta");
        String text = delta != null ? delta.getString("content") : choice.getString("text");
        return text == null ? "" : text;
    }
}
