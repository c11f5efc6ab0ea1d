package org.cocoonjvm.gateway.attestation;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Workers the gateway refused, for {@code /admin/workers}: for their attestation in the TLS
 * handshake (the gateway never sees their Hello) or at Hello (e.g. a model outside the policy),
 * for their Hello (a payout address that is not one, a worker id another worker holds), or for
 * dialing the wrong port the wrong way. A refused worker retries, so one row per (host, worker
 * id, reason, image hash) counts repeats; at most {@value #MAX_ROWS} rows, the least recently
 * seen dropped first. A worker that registers drops its rows from its host ({@link #registered}).
 * Thread-safe: TLS handshakes on every event loop report here.
 */
public final class RefusedWorkers {
    static final int MAX_ROWS = 100;

    /** One kind of refusal from one place. Fields that were not known at refusal are null. */
    public record Refusal(String host, String lastRemote, String workerId, String code, String message, String tee,
                          String imageHash, Instant firstSeen, Instant lastSeen, long count) {
        JsonObject toJson() {
            JsonObject j = new JsonObject().put("remote", lastRemote).put("reason", code).put("message", message)
                    .put("first_seen", firstSeen.toString()).put("last_seen", lastSeen.toString()).put("count", count);
            if (workerId != null) j.put("id", workerId);
            if (tee != null) j.put("tee", tee);
            if (imageHash != null) j.put("image_hash", imageHash);
            return j;
        }
    }

    private final Clock clock;
    private final Map<String, Refusal> rows = new LinkedHashMap<>();

    public RefusedWorkers(Clock clock) {
        this.clock = clock;
    }

    /**
     * A retrying worker is refused every few seconds; its log line is worth writing once a minute.
     */
    static final Duration LOG_EVERY = Duration.ofMinutes(1);

    /** When each row was last worth a log line; same keys as {@link #rows}. */
    private final Map<String, Instant> logged = new LinkedHashMap<>();

    /**
     * @param remote {@code host:port} or {@code unknown}
     * @return whether to log it: the first of its row, or the first for {@link #LOG_EVERY}
     */
    public synchronized boolean add(String remote, String workerId, String code, String message, String tee, String imageHash) {
        String host = host(remote);
        String key = host + "|" + workerId + "|" + code + "|" + imageHash;
        Instant now = clock.instant();
        Refusal old = rows.remove(key);
        rows.put(key, new Refusal(host, remote, workerId, code, message, tee, imageHash,
                old == null ? now : old.firstSeen(), now, old == null ? 1 : old.count() + 1));
        if (rows.size() > MAX_ROWS) {
            logged.remove(rows.keySet().iterator().next());
            rows.remove(rows.keySet().iterator().next());
        }
        Instant lastLogged = logged.get(key);
        if (lastLogged != null && now.isBefore(lastLogged.plus(LOG_EVERY))) {
            return false;
        }
        logged.put(key, now);
        return true;
    }

    /**
     * The worker {@code workerId} registered from {@code remote}: its refusals from that host are
     * over, and are no longer listed (audit X2, note 5: a worker refused invalid_hello and then
     * registered fine was still listed as refused). The log keeps them. Its id's refusals from
     * other hosts stay: another machine may be using the id.
     */
    public synchronized void registered(String remote, String workerId) {
        String host = host(remote);
        rows.values().removeIf(r -> workerId.equals(r.workerId()) && host.equals(r.host()));
        logged.keySet().retainAll(rows.keySet());
    }

    private static String host(String remote) {
        return remote.contains(":") ? remote.substring(0, remote.lastIndexOf(':')) : remote;
    }

    /** Most recent first. */
    public synchronized List<Refusal> all() {
        List<Refusal> out = new ArrayList<>(rows.values());
        out.sort(Comparator.comparing(Refusal::lastSeen).reversed());
        return out;
    }

    public JsonArray toJson() {
        JsonArray out = new JsonArray();
        all().forEach(r -> out.add(r.toJson()));
        return out;
    }
}
