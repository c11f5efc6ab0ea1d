package org.cocoonjvm.gateway.relay;

import io.vertx.core.Handler;
import java.util.concurrent.TimeUnit;

/**
 * A relay's two timers for a stream with nothing to say: the status hold, and the keep-alive
 * comments after it. Apart from {@link Relay} because they run on their own clock (the stream's
 * silence), whatever the worker and the client do; the relay only starts them, tells them of the
 * first token, and cancels them at its end. The instance is the keep-alive timer's handler, so a
 * tick allocates nothing but its next timer. Owned by the relay's event loop, as the relay is.
 */
final class KeepAlives implements Handler<Void> {
    private final Relay relay;
    private EventLoopTimers.Timer holdTimer;
    private EventLoopTimers.Timer keepAliveTimer;

    KeepAlives(Relay relay) {
        this.relay = relay;
    }

    /**
     * Holds the status for a while: a failure before the first token is then a real status. Once
     * the hold is over, the stream commits with a comment, and keep-alives begin.
     */
    void holdStatus() {
        RelayOptions o = relay.env.options();
        holdTimer = relay.env.timers().set(o.holdStatusMs(), v -> {
            relay.sink.keepAlive();
            relay.timings.keptAlive(RelayTimings.now());
            keepAlives(o.keepAliveMs());
        });
    }

    /** The first token goes out: the status hold is over, and a stream's keep-alives run from now if they did not yet. */
    void firstToken() {
        EventLoopTimers.cancel(holdTimer);
        if (relay.request.stream() && keepAliveTimer == null) {
            keepAlives(relay.env.options().keepAliveMs());
        }
    }

    /** The relay ended: no hold, and no keep-alive more. */
    void cancel() {
        EventLoopTimers.cancel(holdTimer);
        EventLoopTimers.cancel(keepAliveTimer);
    }

    /**
     * A comment line once the stream was silent for {@code keepAliveMs}, before the first token and
     * between tokens alike: a slow model's pauses must not look like a dead connection to the
     * proxies and load balancers on the way. One timer at a time, set for when the silence would
     * reach the limit; tokens do not touch it. Not while the client's socket is full: it has bytes.
     */
    private void keepAlives(long inMs) {
        keepAliveTimer = relay.env.timers().set(inMs, this);
    }

    @Override
    public void handle(Void tick) {
        if (relay.done) {
            return;  // a timer that fired as the relay ended must not schedule the next
        }
        long limit = relay.env.options().keepAliveMs() * 1_000_000;
        long now = RelayTimings.now();
        long quiet = relay.timings.quietNanos(now);
        if (quiet < limit) {
            keepAlives(TimeUnit.NANOSECONDS.toMillis(limit - quiet));
            return;
        }
        if (!relay.sink.writeQueueFull()) {
            relay.sink.keepAlive();
        }
        relay.timings.keptAlive(now);
        keepAlives(relay.env.options().keepAliveMs());
    }
}
