package org.cocoonjvm.load;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Set;

/**
 * How a parameter file's fields are read: each reader names the place ({@code f.json flows.chat})
 * and the field, and refuses a value of the wrong type in one line, showing what was given, so
 * every field of {@link Scenario} and {@link RequestSpec} is refused the same way.
 */
final class Fields {
    private Fields() {}

    static void onlyKnown(JsonObject json, Set<String> known, String where) {
        for (String key : json.fieldNames()) {
            if (!known.contains(key)) {
                throw new ScenarioException(where + ": unknown field '" + key + "'; known: " + known);
            }
        }
    }

    static String string(JsonObject json, String key, String where) {
        Object v = json.getValue(key);
        if (!(v instanceof String s) || s.isBlank()) {
            throw new ScenarioException(where + ": '" + key + "' must be a non-empty string" + (v == null ? "" : ", got " + shown(v)));
        }
        return s;
    }

    /** A k6 duration string; {@code fallback} null: required. */
    static Duration duration(JsonObject json, String key, String fallback, String where) {
        Object v = json.getValue(key);
        if (v == null && fallback != null) {
            return K6Duration.parse(fallback, where + "." + key);
        }
        if (!(v instanceof String text)) {
            throw new ScenarioException(where + ": '" + key + "' must be a k6 duration string (like \"30s\"), got " + shown(v));
        }
        return K6Duration.parse(text, where + "." + key);
    }

    /** A duration that divides or bounds something, so zero would be a hang or an instant failure. */
    static Duration positive(JsonObject json, String key, String fallback, String where) {
        Duration d = duration(json, key, fallback, where);
        if (d.isZero()) {
            throw new ScenarioException(where + ": '" + key + "' must be longer than 0, got " + json.getValue(key));
        }
        return d;
    }

    static boolean bool(JsonObject json, String key, boolean fallback, String where) {
        Object v = json.getValue(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Boolean b)) {
            throw new ScenarioException(where + ": '" + key + "' must be true or false, got " + shown(v));
        }
        return b;
    }

    /** A non-negative number; {@code fallback} NaN: required. */
    static double number(JsonObject json, String key, double fallback, String where) {
        Object v = json.getValue(key);
        if (v == null) {
            if (Double.isNaN(fallback)) {
                throw new ScenarioException(where + ": '" + key + "' is required");
            }
            return fallback;
        }
        if (!(v instanceof Number n) || n.doubleValue() < 0) {
            throw new ScenarioException(where + ": '" + key + "' must be a non-negative number, got " + shown(v));
        }
        return n.doubleValue();
    }

    static JsonObject object(JsonObject json, String key, String where, boolean required) {
        Object v = json.getValue(key);
        if (v == null && !required) {
            return new JsonObject();
        }
        if (!(v instanceof JsonObject o)) {
            throw new ScenarioException(where + ": '" + key + "' must be an object" + (v == null ? "" : ", got " + shown(v)));
        }
        return o;
    }

    /**
     * A value as a message shows it, its type plain where that is the mistake: {@code "64" (a string)}
     * for a quoted number, which shown bare would read as the number it was meant to be.
     */
    static String shown(Object v) {
        return switch (v) {
            case String text -> "\"" + text + "\" (a string)";
            case JsonObject o -> "an object " + o.encode();
            case JsonArray a -> "a list " + a.encode();
            case null -> "null";
            default -> String.valueOf(v);
        };
    }
}
