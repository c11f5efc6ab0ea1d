package org.cocoonjvm.gateway.relay;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Set;
import org.cocoonjvm.protocol.openai.ApiException;

/**
 * The relays running on one event loop, and owned by it: a stopping gateway ends those its grace
 * did not see finish, so that each is settled and answered rather than cut with its connection,
 * and keeps its metrics served until each has also been reported ({@link #reported()}).
 */
public final class RunningRelays {
    private final Set<Relay> relays = new HashSet<>();
    /**
     * Relays started and not reported yet: a relay leaves {@link #relays} as it settles, and is
     * reported (its access-log line, its metrics) once its client has its last write, later.
     */
    private final Set<Relay> unreported = new HashSet<>();
    /** Asked for by {@link #emptied}; completed when the last relay leaves. */
    private Promise<Void> emptied;
    /** Asked for by {@link #reported()}; completed when the last relay is reported. */
    private Promise<Void> allReported;

    void add(Relay relay) {
        relays.add(relay);
        unreported.add(relay);
    }

    /** The relay's outcome went to the observers (metrics, access log). */
    void reported(Relay relay) {
        unreported.remove(relay);
        if (unreported.isEmpty() && allReported != null) {
            allReported.tryComplete();
        }
    }

    /**
     * Completes once every relay started here has been reported (at once if none runs): what they
     * did is in the metrics. Relays started after it completed are not waited for.
     */
    public Future<Void> reported() {
        if (allReported == null) {
            allReported = Promise.promise();
        }
        if (unreported.isEmpty()) {
            allReported.tryComplete();
        }
        return allReported.future();
    }

    void remove(Relay relay) {
        relays.remove(relay);
        if (relays.isEmpty() && emptied != null) {
            emptied.tryComplete();
        }
    }

    /** Completes once no relay runs here (at once if none does): each has settled its bill. */
    public Future<Void> emptied() {
        if (emptied == null) {
            emptied = Promise.promise();
        }
        if (relays.isEmpty()) {
            emptied.tryComplete();
        }
        return emptied.future();
    }

    public int size() {
        return relays.size();
    }

    /**
     * Ends every relay still running with {@code why}: each bills what its worker produced and
     * tells its client, waiting at most {@code waitMs} for its worker's final count.
     */
    public void endAll(ApiException why, long waitMs) {
        for (Relay relay : new ArrayList<>(relays)) {
            relay.failWithin(why, waitMs);
        }
    }
}
