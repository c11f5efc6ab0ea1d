package org.cocoonjvm.worker.serve;

import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Where a worker stands with its gateway, for {@code /status}: a worker its gateway refuses for
 * good keeps running and earns nothing, and a health check must see that rather than a worker that
 * serves (audit M, M-3).
 *
 * @param reason  the refusal's code (the gateway's, such as {@code payout_address_changed}, or
 *                {@code unreachable}); null when registered
 * @param message what the worker logged about it; null when registered
 * @param since   when this state (with this reason) began
 */
record Registration(State state, String reason, String message, Instant since) {
    enum State {
        /** Not registered yet, or again: the gateway is unreachable, or refused what may pass by itself. */
        CONNECTING,
        REGISTERED,
        /** Refused for what retrying cannot fix; the link still retries, for when the owner has fixed it. */
        REFUSED;

        String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** A gateway's refusal message starts with its reason code, e.g. {@code payout_address_changed: …}. */
    private static final Pattern REASON = Pattern.compile("[a-z][a-z0-9_]*");

    static Registration connecting(String reason, String message) {
        return new Registration(State.CONNECTING, reason, message, Instant.now());
    }

    /** The code a refusal's message starts with, or {@code fallback} when it starts with none. */
    static String reasonOf(String message, String fallback) {
        int colon = message.indexOf(':');
        return colon > 0 && REASON.matcher(message.substring(0, colon)).matches() ? message.substring(0, colon) : fallback;
    }

    /** This state, keeping the time it began when the state and reason are the same as {@code before}'s. */
    Registration after(Registration before) {
        return before != null && before.state == state && Objects.equals(before.reason, reason)
                ? new Registration(state, reason, message, before.since) : this;
    }

    JsonObject toJson(String gateway) {
        JsonObject json = new JsonObject().put("address", gateway).put("state", state.label());
        if (reason != null) {
            json.put("reason", reason).put("message", message);
        }
        return json.put("since", since.toString());
    }
}
