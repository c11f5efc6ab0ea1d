package org.cocoonjvm.worker.payments;

import io.vertx.core.json.JsonObject;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What this run metered on its channels and wrote off: tokens generated for a gateway whose stream
 * was gone before they, and the Final counting them, went out on it (the gateway reset it: a
 * worker silent past its liveness PINGs, a stall or a long GC pause; or its connection broke: a
 * gateway that crashed). The gateway bills and pays its own count of such a stream, so these
 * are never paid; kept apart, they leave a channel's unpaid amount at what is still to come, and
 * reconcile the worker's token counter with the gateway's.
 */
public final class Unbilled {
    private final AtomicLong completionTokens = new AtomicLong();
    private final AtomicLong nanoton = new AtomicLong();

    void add(long tokens, long fee) {
        completionTokens.addAndGet(tokens);
        // A prompt the sequence took back after its Accepted went out is billed by the gateway
        // all the same: the channel counts it, and nothing is written off for it.
        nanoton.addAndGet(Math.max(0, fee));
    }

    public long completionTokens() {
        return completionTokens.get();
    }

    public long nanoton() {
        return nanoton.get();
    }

    /** For {@code /status}, by reason; one so far. */
    public JsonObject status() {
        return new JsonObject().put("gateway_reset", new JsonObject().put("completion_tokens", completionTokens())
                .put("nanoton", nanoton()));
    }
}
