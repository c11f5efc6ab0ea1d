package org.cocoonjvm.worker.serve;

import io.vertx.core.Vertx;
import java.util.concurrent.TimeUnit;

/**
 * Whether one event loop stalled lately (a stopped process, a long GC pause): a timer on it notes
 * when it last ran. A stall is seen from inside the loop, however the tasks after it were queued:
 * by the timer's lateness once it has run, and before that by its last run lying too far back.
 * Used on its event loop only.
 */
final class LoopWatch {
    private static final long BEAT_MS = 100;
    /**
     * A loop that ran no timer for this long stalled. Far above any queueing on a busy loop, below
     * the 3 s without a PING answer after which a gateway cuts a worker.
     */
    static final long STALLED_NANOS = 1_000_000_000L;

    private long lastBeatNanos = System.nanoTime();
    /** Writes until then follow a stall the loop may not have read the network since. */
    private long suspectUntilNanos = lastBeatNanos;
    /** The last beat before the latest stall seen, far back before any. */
    private long stallBeganNanos = lastBeatNanos - 2 * STALLED_NANOS;

    /** Call on the event loop to watch: the timer runs on the caller's context. */
    LoopWatch(Vertx vertx) {
        vertx.setPeriodic(BEAT_MS, id -> beat());
    }

    private void beat() {
        long now = System.nanoTime();
        if (now - lastBeatNanos > STALLED_NANOS) {
            suspectUntilNanos = now + STALLED_NANOS;
            stallBeganNanos = lastBeatNanos;
        }
        lastBeatNanos = now;
    }

    /**
     * Whether the loop stalled after {@code sentNanos} (System.nanoTime), or may have: an answer
     * to what was sent then can have arrived during the stall, ahead of what the peer did after
     * (a reset). Sent within a beat of the last one before the stall counts as before it: the
     * stall began somewhere in that beat.
     */
    boolean stalledSince(long sentNanos) {
        long began = System.nanoTime() - lastBeatNanos > STALLED_NANOS ? lastBeatNanos : stallBeganNanos;
        return sentNanos - began < TimeUnit.MILLISECONDS.toNanos(BEAT_MS);
    }

    boolean stalledLately() {
        long now = System.nanoTime();
        return now - lastBeatNanos > STALLED_NANOS || now - suspectUntilNanos < 0;
    }
}
