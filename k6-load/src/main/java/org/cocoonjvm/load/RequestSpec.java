package org.cocoonjvm.load;

import static org.cocoonjvm.load.Fields.bool;
import static org.cocoonjvm.load.Fields.number;
import static org.cocoonjvm.load.Fields.object;
import static org.cocoonjvm.load.Fields.onlyKnown;
import static org.cocoonjvm.load.Fields.shown;
import static org.cocoonjvm.load.Fields.string;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What every request of a flow is: its body's fields, the prompts its requests take in turn, and
 * the HTTP headers it adds to the ones both tools send themselves. lib/cocoon.js reads the same
 * {@code request} object, so the rules here and there must stay the same (k6-load/README.md).
 *
 * @param prompts the flow's Nth request asks the (N mod size)th; one prompt repeated is what most flows send
 * @param headers sent with every request, besides the tools' own (see {@link #RESERVED})
 */
public record RequestSpec(boolean stream, int maxTokens, String serviceTier, List<String> prompts, Map<String, String> headers) {
    private static final Set<String> FIELDS = Set.of("stream", "max_tokens", "service_tier", "prompt", "prompts", "headers");
    /**
     * Headers both tools set themselves, lower-cased: the key (from {@code --key} or {@code API_KEY}),
     * what describes the JSON body they build, and the connection's own. Another value for one of
     * these would either be ignored by the HTTP client or break the request, so the file may not
     * give one.
     */
    static final Set<String> RESERVED = Set.of("authorization", "content-type", "content-length", "content-encoding",
            "transfer-encoding", "host", "connection");
    /** RFC 9110's token: what a header name may be made of. */
    private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
    /** Control characters other than a tab: a line break in a value would split the request's head. */
    private static final Pattern CONTROL = Pattern.compile("[\\x00-\\x08\\x0a-\\x1f\\x7f]");

    public RequestSpec {
        prompts = List.copyOf(prompts);
        headers = Map.copyOf(headers);
    }

    /** A request with one prompt and no headers of its own. */
    public static RequestSpec of(boolean stream, int maxTokens, String serviceTier, String prompt) {
        return new RequestSpec(stream, maxTokens, serviceTier, List.of(prompt), Map.of());
    }

    /** The prompt of the flow's {@code index}th request (from 0). */
    public String prompt(long index) {
        return prompts.get((int) Math.floorMod(index, (long) prompts.size()));
    }

    /** The body of the flow's {@code index}th request. */
    public JsonObject body(String model, long index) {
        JsonObject body = new JsonObject().put("model", model)
                .put("messages", new JsonArray().add(new JsonObject().put("role", "user").put("content", prompt(index))))
                .put("max_tokens", maxTokens).put("stream", stream).put("service_tier", serviceTier);
        return stream ? body.put("stream_options", new JsonObject().put("include_usage", true)) : body;
    }

    /** A flow's {@code request} object; {@code where} names it in messages ({@code f.json flows.chat.request}). */
    static RequestSpec parse(JsonObject r, String where) {
        onlyKnown(r, FIELDS, where);
        String tier = r.containsKey("service_tier") ? string(r, "service_tier", where) : "default";
        if (!Set.of("default", "flex").contains(tier)) {
            throw new ScenarioException(where + ": service_tier must be default or flex, got " + tier);
        }
        return new RequestSpec(bool(r, "stream", true, where), (int) number(r, "max_tokens", Double.NaN, where), tier,
                prompts(r, where), headers(object(r, "headers", where, false), where + ".headers"));
    }

    private static List<String> prompts(JsonObject r, String where) {
        if (r.containsKey("prompt") && r.containsKey("prompts")) {
            throw new ScenarioException(where + ": give 'prompt' or 'prompts', not both");
        }
        if (!r.containsKey("prompts")) {
            return List.of(string(r, "prompt", where));
        }
        if (!(r.getValue("prompts") instanceof JsonArray list) || list.isEmpty()) {
            throw new ScenarioException(where + ": 'prompts' must list at least one prompt, got " + shown(r.getValue("prompts")));
        }
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            if (!(list.getValue(i) instanceof String p) || p.isBlank()) {
                throw new ScenarioException(where + ".prompts[" + i + "]: must be a non-empty string, got " + shown(list.getValue(i)));
            }
            prompts.add(p);
        }
        return prompts;
    }

    private static Map<String, String> headers(JsonObject json, String where) {
        Map<String, String> headers = new LinkedHashMap<>();
        Map<String, String> byLowerName = new HashMap<>();
        for (String name : json.fieldNames()) {
            String lower = name.toLowerCase(Locale.ROOT);
            if (!TOKEN.matcher(name).matches()) {
                throw new ScenarioException(where + ": '" + name + "' is not a header name (letters, digits and !#$%&'*+.^_`|~-)");
            }
            if (RESERVED.contains(lower)) {
                throw new ScenarioException(where + ": '" + name + "' cannot be set here; both tools set it themselves "
                        + "(the key from --key or API_KEY, the JSON body's type and length, the target's host and connection)");
            }
            String twin = byLowerName.put(lower, name);
            if (twin != null) {
                // HTTP header names ignore case: the two would be sent as one header with two values.
                throw new ScenarioException(where + ": '" + twin + "' and '" + name + "' are one header; give it once");
            }
            if (!(json.getValue(name) instanceof String value)) {
                throw new ScenarioException(where + ": '" + name + "' must be a string, got " + shown(json.getValue(name)));
            }
            if (CONTROL.matcher(value).find()) {
                throw new ScenarioException(where + ": '" + name + "' must not hold line breaks or control characters");
            }
            headers.put(name, value);
        }
        return headers;
    }
}
