package org.cocoonjvm.gateway.relay;

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

    void add(Relay relay) {
        relays.add(relay);
    }

    void remove(Relay relay) {
        relays.remove(relay);
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
