package org.cocoonjvm.protocol.openai;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonPointer;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.json.jackson.JacksonCodec;
import java.util.Arrays;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.Priority;
import org.cocoonjvm.protocol.grpc.SamplingParams;

/**
 * Turns the body of {@code POST /v1/chat/completions} or {@code POST /v1/completions} into a
 * {@link ValidRequest}, or rejects it with an {@link ApiException} naming the offending
 * {@code param}.
 *
 * <p>Unknown-field policy: fields this parser does not know are ignored, as OpenAI's SDKs send
 * many optional ones ({@code user}, {@code metadata}, {@code store}). Fields it knows but cannot
 * honour (tool calling, log probabilities, {@code logit_bias}, non-text output, {@code n > 1};
 * the module README lists them all) are rejected unless set to a value that asks for nothing,
 * because silently ignoring them would return something the client did not ask for.
 */
public final class RequestParser {
    public static final int MAX_STOP_SEQUENCES = RequestLimits.MAX_STOP_SEQUENCES;

    private RequestParser() {}

    /** {@code POST /v1/chat/completions}. */
    public static ValidRequest chat(Buffer body) {
        return chat(object(body));
    }

    public static ValidRequest chat(JsonObject json) {
        String model = requiredString(json, "model");
        GenerateRequest.Builder generate = GenerateRequest.newBuilder().setModel(model).setChat(messages(json.getValue("messages")));
        unsupported(json, "tools", "Tool calling is not supported.", new JsonArray());
        unsupported(json, "functions", "Function calling is not supported.", new JsonArray());
        // With no tools, "auto" cannot pick one either.
        unsupported(json, "tool_choice", "Tool calling is not supported; 'tool_choice' may only be 'none' or 'auto'.",
                "none", "auto");
        unsupported(json, "response_format", "Only response_format {\"type\": \"text\"} is supported.",
                new JsonObject().put("type", "text"));
        unsupported(json, "modalities", "Only text output is supported; 'modalities' may only be [\"text\"].",
                new JsonArray().add("text"));
        unsupported(json, "audio", "Audio output is not supported.");
        unsupported(json, "top_logprobs", "'top_logprobs' is not supported: log probabilities are not returned.");
        unsupported(json, "web_search_options", "Web search is not supported.");
        unsupported(json, "prediction", "Predicted outputs ('prediction') are not supported.");
        return common(json, model, generate, CompletionMeta.Flavor.CHAT);
    }

    /** {@code POST /v1/completions}: a single prompt string (or a one-element array of strings). */
    public static ValidRequest completion(Buffer body) {
        return completion(object(body));
    }

    public static ValidRequest completion(JsonObject json) {
        String model = requiredString(json, "model");
        Object prompt = json.getValue("prompt");
        if (prompt instanceof JsonArray array && array.size() == 1 && array.getValue(0) instanceof String only) {
            prompt = only;
        }
        if (!(prompt instanceof String text) || text.isEmpty()) {
            throw ApiException.invalid("prompt", "'prompt' must be a non-empty string (one prompt per request).");
        }
        RequestLimits.wellFormed(text, "prompt");
        unsupported(json, "echo", "'echo' is not supported.", false);
        unsupported(json, "suffix", "'suffix' is not supported.", "");
        Long bestOf = optionalLong(json, "best_of");
        if (bestOf != null && bestOf != 1) {
            throw ApiException.invalid("best_of", "Only best_of = 1 is supported, got " + bestOf + ".");
        }
        GenerateRequest.Builder generate = GenerateRequest.newBuilder().setModel(model).setPrompt(text);
        return common(json, model, generate, CompletionMeta.Flavor.TEXT);
    }

    /** The fields both endpoints share. */
    private static ValidRequest common(JsonObject json, String model, GenerateRequest.Builder generate, CompletionMeta.Flavor flavor) {
        boolean stream = optionalBoolean(json, "stream", false);
        boolean includeUsage = false;
        boolean continuousUsage = false;
        Object streamOptions = json.getValue("stream_options");
        if (streamOptions != null) {
            if (!(streamOptions instanceof JsonObject options)) {
                throw ApiException.invalid("stream_options", "'stream_options' must be an object.");
            }
            if (!stream) {
                throw ApiException.invalid("stream_options", "'stream_options' is only allowed when 'stream' is true.");
            }
            includeUsage = optionalBoolean(options, "include_usage", false, "stream_options.include_usage");
            continuousUsage = optionalBoolean(options, "continuous_usage_stats", false, "stream_options.continuous_usage_stats");
        }

        Long maxTokens = optionalLong(json, "max_completion_tokens");
        String maxTokensParam = "max_completion_tokens";
        if (maxTokens == null) {
            maxTokens = optionalLong(json, "max_tokens");
            maxTokensParam = "max_tokens";
        }
        if (maxTokens != null) {
            generate.setMaxTokens(RequestLimits.maxTokens(maxTokens, maxTokensParam));
        }

        Long n = optionalLong(json, "n");
        if (n != null && n != 1) {
            throw ApiException.invalid("n", "Only n = 1 is supported, got " + n + ".");
        }
        // A boolean in chat, a count in completions, where even 0 asks for the sampled tokens' log probabilities.
        unsupported(json, "logprobs", "'logprobs' is not supported.", false);
        unsupported(json, "logit_bias", "'logit_bias' is not supported.", new JsonObject());
        ServiceTier tier = tier(json.getValue("service_tier"));
        generate.setPriority(tier == ServiceTier.FLEX ? Priority.PRIORITY_FLEX : Priority.PRIORITY_DEFAULT);
        generate.setSampling(sampling(json));
        stops(json, generate);
        return new ValidRequest(model, new ValidRequest.Delivery(stream, includeUsage, continuousUsage), flavor, tier,
                generate.build());
    }

    private static ServiceTier tier(Object value) {
        if (value == null || "auto".equals(value) || "default".equals(value)) {
            return ServiceTier.DEFAULT;
        }
        if ("flex".equals(value)) {
            return ServiceTier.FLEX;
        }
        throw ApiException.invalid("service_tier", "'service_tier' must be 'auto', 'default' or 'flex', got " + ApiException.shown(value) + ".");
    }

    /** A request body as the JSON object it must be, before the endpoint's own checks. */
    public static JsonObject object(Buffer body) {
        if (body == null || body.length() == 0) {
            throw ApiException.invalid(null, "The request body is empty; send a JSON object.");
        }
        Object root;
        try {
            // Strict JSON: a key given twice (whose value wins differs between parsers, so a proxy
            // in front could check one request and this gateway run another) and comments (not
            // JSON; OpenAI refuses them) are errors, not the last value and whitespace (audit H, H-5).
            JsonParser parser = JacksonCodec.createParser(body);
            parser.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
            parser.disable(JsonParser.Feature.ALLOW_COMMENTS);
            root = JacksonCodec.fromParser(parser, Object.class);
        } catch (DecodeException e) {
            // Valid JSON past one of Jackson's limits (a 2000-digit number) is not a syntax error.
            if (e.getCause() instanceof StreamConstraintsException limit) {
                throw ApiException.invalid(null, "The request body exceeds a JSON parser limit. "
                        + limit.getOriginalMessage().replaceFirst(", from `[^`]*`", "") + ".");
            }
            if (e.getCause() instanceof JsonParseException p && p.getOriginalMessage().startsWith("Duplicate field '")
                    && p.getProcessor() instanceof JsonParser at) {
                String key = p.getOriginalMessage().substring("Duplicate field '".length()).replaceFirst("'.*", "");
                String param = param(at.getParsingContext().getParent().pathAsPointer(), key);
                throw ApiException.invalid(param, "The request body gives '" + param + "' more than once; give each key once.");
            }
            throw ApiException.invalid(null, "The request body is not valid JSON.");
        }
        if (!(root instanceof JsonObject json)) {
            throw ApiException.invalid(null, "The request body must be a JSON object.");
        }
        return json;
    }

    /** OpenAI's name for {@code key} in the object at {@code pointer}: {@code messages[0].role}. */
    private static String param(JsonPointer pointer, String key) {
        StringBuilder param = new StringBuilder();
        for (JsonPointer p = pointer; !p.matches(); p = p.tail()) {
            if (p.mayMatchElement()) {
                param.append('[').append(p.getMatchingIndex()).append(']');
            } else {
                param.append(param.isEmpty() ? "" : ".").append(p.getMatchingProperty());
            }
        }
        return param.isEmpty() ? key : param + "." + key;
    }

    private static ChatMessages messages(Object value) {
        if (!(value instanceof JsonArray array) || array.isEmpty()) {
            throw ApiException.invalid("messages", "'messages' must be a non-empty array.");
        }
        ChatMessages.Builder out = ChatMessages.newBuilder();
        for (int i = 0; i < array.size(); i++) {
            String param = "messages[" + i + "]";
            if (!(array.getValue(i) instanceof JsonObject message)) {
                throw ApiException.invalid(param, "'" + param + "' must be an object.");
            }
            String r = RequestLimits.role(message.getValue("role"), param + ".role");
            out.addMessages(ChatMessage.newBuilder().setRole(r).setContent(content(message.getValue("content"), param + ".content")));
        }
        return out.build();
    }

    /**
     * Content is a string, or an array of parts of which only text parts are supported. It is
     * required of every role: null content is for an assistant's tool calls, which are not supported.
     */
    private static String content(Object value, String param) {
        if (value instanceof String s) {
            return RequestLimits.wellFormed(s, param);
        }
        if (value instanceof JsonArray parts) {
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < parts.size(); i++) {
                String partParam = param + "[" + i + "]";
                if (!(parts.getValue(i) instanceof JsonObject part) || !"text".equals(part.getValue("type"))
                        || !(part.getValue("text") instanceof String t)) {
                    throw ApiException.invalid(partParam, "Only text content parts are supported.");
                }
                text.append(RequestLimits.wellFormed(t, partParam + ".text"));
            }
            return text.toString();
        }
        throw ApiException.invalid(param, "'" + param + "' is required and must be a string or an array of text parts.");
    }

    private static SamplingParams sampling(JsonObject json) {
        SamplingParams.Builder s = SamplingParams.newBuilder();
        Double temperature = optionalNumber(json, "temperature");
        s.setTemperature(temperature == null ? RequestLimits.DEFAULT_TEMPERATURE
                : RequestLimits.temperature(temperature, "temperature"));
        Double topP = optionalNumber(json, "top_p");
        boolean smallestNucleus = topP != null && RequestLimits.topP(topP, "top_p") == 0;
        if (topP != null && !smallestNucleus) {
            s.setTopP(topP.floatValue());
        }
        Long topK = optionalLong(json, "top_k");
        if (topK != null) {
            s.setTopK(RequestLimits.topK(topK, "top_k"));
        }
        if (smallestNucleus) {
            // OpenAI takes top_p 0: the nucleus is then the most likely token alone. On the wire 0 is
            // "unset", so it travels as what it means, top_k 1.
            s.setTopK(1);
        }
        Long seed = optionalLong(json, "seed");
        if (seed != null) {
            s.setSeed(seed);
        }
        Double presence = optionalNumber(json, "presence_penalty");
        if (presence != null) {
            s.setPresencePenalty(RequestLimits.penalty(presence, "presence_penalty"));
        }
        Double frequency = optionalNumber(json, "frequency_penalty");
        if (frequency != null) {
            s.setFrequencyPenalty(RequestLimits.penalty(frequency, "frequency_penalty"));
        }
        return s.build();
    }

    private static void stops(JsonObject json, GenerateRequest.Builder generate) {
        Object stop = json.getValue("stop");
        if (stop == null) {
            return;
        }
        if (stop instanceof String s) {
            generate.addStop(RequestLimits.stop(s, "stop"));
            return;
        }
        if (!(stop instanceof JsonArray array)) {
            throw ApiException.invalid("stop", "'stop' must be a string or an array of at most " + MAX_STOP_SEQUENCES + " strings.");
        }
        RequestLimits.stopCount(array.size(), "stop", "a string or an array");
        for (int i = 0; i < array.size(); i++) {
            if (!(array.getValue(i) instanceof String s)) {
                throw ApiException.invalid("stop[" + i + "]", "'stop[" + i + "]' must be a string.");
            }
            generate.addStop(RequestLimits.stop(s, "stop[" + i + "]"));
        }
    }

    private static String requiredString(JsonObject json, String field) {
        return RequestLimits.nonEmpty(json.getValue(field) instanceof String s ? s : null, field);
    }

    private static boolean optionalBoolean(JsonObject json, String field, boolean fallback) {
        return optionalBoolean(json, field, fallback, field);
    }

    private static boolean optionalBoolean(JsonObject json, String field, boolean fallback, String param) {
        Object value = json.getValue(field);
        if (value == null) {
            return fallback;
        }
        if (!(value instanceof Boolean b)) {
            throw ApiException.invalid(param, "'" + param + "' must be a boolean, got " + ApiException.shown(value) + ".");
        }
        return b;
    }

    private static Long optionalLong(JsonObject json, String field) {
        Object value = json.getValue(field);
        if (value == null) {
            return null;
        }
        if (value instanceof Number number) {
            double d = number.doubleValue();
            if (d == Math.rint(d) && Math.abs(d) < 0x1p63) {
                return number.longValue();
            }
        }
        throw ApiException.invalid(field, "'" + field + "' must be an integer, got " + ApiException.shown(value) + ".");
    }

    /** The field's value as a number, range unchecked. */
    private static Double optionalNumber(JsonObject json, String field) {
        Object value = json.getValue(field);
        if (value == null) {
            return null;
        }
        if (!(value instanceof Number number)) {
            throw ApiException.invalid(field, "'" + field + "' must be a number, got " + ApiException.shown(value) + ".");
        }
        return number.doubleValue();
    }

    /**
     * Rejects an option this server knows but cannot honour, unless it is absent or {@code inert}:
     * set to a value that asks for nothing more than the server does anyway ({@code false}, {@code []}).
     */
    private static void unsupported(JsonObject json, String field, String message, Object... inert) {
        Object value = json.getValue(field);
        if (value != null && !Arrays.asList(inert).contains(value)) {
            throw ApiException.invalid(field, message);
        }
    }
}
