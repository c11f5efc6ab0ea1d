package org.cocoonjvm.gateway.relay;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Set;
import org.cocoonjvm.protocol.openai.ApiException;

/**
 * The relays running on one event loop, and owned by it: a stopping gateway ends those its grace
 * did not see finish, so that each is settled and answered rather than cut with its connection.
 */
public final class RunningRelays {
    private final Set<Relay> relays = new HashSet<>();
    /** Asked for by {@link #emptied}; completed when the last relay leaves. */
    private Promise<Void> emptied;

    void add(Relay relay) {
        relays.add(relay);
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
