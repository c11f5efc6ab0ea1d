package org.cocoonjvm.protocol.openai;

import java.util.List;

/**
 * The limits every front door puts on a completion request, and the words it rejects with.
 * {@link RequestParser} (OpenAI JSON) and {@link InferenceRequestParser} (the gRPC
 * {@code Inference} API) read a field in their own format, then check its value here, so the two
 * enforce the same limits with the same messages.
 */
final class RequestLimits {
    static final int MAX_STOP_SEQUENCES = 4;
    /** A list, not a set, so that the message naming them lists them in this order every time. */
    static final List<String> ROLES = List.of("system", "developer", "user", "assistant", "tool");
    /** The temperature when the client sets none: OpenAI's default. */
    static final float DEFAULT_TEMPERATURE = 1f;

    private RequestLimits() {}

    /** A value that must be there: the model, a prompt. */
    static String nonEmpty(String value, String param) {
        if (value == null || value.isBlank()) {
            throw ApiException.invalid(param, "'" + param + "' is required and must be a non-empty string.");
        }
        return value;
    }

    static int maxTokens(long value, String param) {
        if (value < 1) {
            throw ApiException.invalid(param, "'" + param + "' must be at least 1, got " + value + ".");
        }
        if (value > Integer.MAX_VALUE) {
            throw ApiException.invalid(param, "'" + param + "' must be at most " + Integer.MAX_VALUE + ", got " + value + ".");
        }
        return (int) value;
    }

    static String role(Object role, String param) {
        if (!(role instanceof String r) || !ROLES.contains(r)) {
            throw ApiException.invalid(param, "'" + param + "' must be one of " + ROLES + ", got " + ApiException.shown(role) + ".");
        }
        return r;
    }

    static float temperature(double value, String param) {
        return (float) between(value, 0, 2, param);
    }

    /** top_p, where 0 is not a nucleus: callers decide what it means ("off" on the wire, the top token over HTTP). */
    static float topP(double value, String param) {
        return (float) between(value, 0, 1, param);
    }

    static float penalty(double value, String param) {
        return (float) between(value, -2, 2, param);
    }

    static int topK(long value, String param) {
        if (value < 0 || value > Integer.MAX_VALUE) {
            throw ApiException.invalid(param, "'" + param + "' must be 0 (disabled) or positive, got " + value + ".");
        }
        return (int) value;
    }

    static void stopCount(int count, String param, String shape) {
        if (count > MAX_STOP_SEQUENCES) {
            throw ApiException.invalid(param, "'" + param + "' must be " + shape + " of at most " + MAX_STOP_SEQUENCES
                    + " strings, got " + count + ".");
        }
    }

    static String stop(String stop, String param) {
        if (stop.isEmpty()) {
            throw ApiException.invalid(param, "'" + param + "' must not be empty.");
        }
        return wellFormed(stop, param);
    }

    /**
     * Text bound for a worker: a JSON escape can spell half a surrogate pair, which has no UTF-8
     * encoding, so protobuf would log a stack trace and send a '?' in its place.
     */
    static String wellFormed(String text, String param) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (!Character.isSurrogate(c)) {
                continue;
            }
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else {
                throw ApiException.invalid(param, "'" + param + "' contains an unpaired UTF-16 surrogate (U+"
                        + String.format("%04X", (int) c) + " at index " + i + ").");
            }
        }
        return text;
    }

    /** NaN is outside every range. */
    static double between(double value, double min, double max, String param) {
        if (!(value >= min && value <= max)) {
            throw ApiException.invalid(param, "'" + param + "' must be between " + min + " and " + max + ", got " + value + ".");
        }
        return value;
    }
}
