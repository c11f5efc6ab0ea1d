package org.cocoonjvm.gateway.relay;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import java.util.concurrent.TimeUnit;

/**
 * The timers of the requests on one event loop: each request's deadline, status hold, keep-alive,
 * call opening and body arrival, set at its start and nearly always cancelled long before they
 * fire. A Vert.x timer each cost 7.7% of the gateway's CPU on 2-token replies (a concurrent map
 * entry, a close hook and a Netty task for every one, set and cancelled: docs/benchmarks.md,
 * "Short requests"). Timers of one delay set on one thread fall due in the order they were set, so
 * each delay has a {@link Lane}: a list in that order with one Vert.x timer, for its head. Setting
 * a timer appends to its lane, cancelling one unlinks it; neither touches Vert.x. Its action runs
 * on the context it was set on, as a Vert.x timer's would; the Vert.x timers are set as the
 * relays set theirs before, so a front's undeploy cancels them with its others.
 *
 * <p>The first {@value #LANES} delays set get a lane each, for good: the per-request delays are the
 * gateway's options, a handful, all set by its first requests. Any other delay (a keep-alive's rest,
 * a gRPC client's own deadline: they come and go) gets a Vert.x timer of its own, which behaves the
 * same. A lane is not handed to another delay once empty: such delays would take turns with the
 * options' in it, and each turn would set a Vert.x timer again.
 *
 * <p>The event loop's only, as the relays are: use from any other thread is refused, since the
 * lists have no lock.
 */
public final class EventLoopTimers {
    static final int LANES = 16;
    /** Longer delays get a Vert.x timer of their own: a lane's due times, in nanoseconds, must not overflow. */
    private static final long MOST_LANE_DELAY_MS = TimeUnit.DAYS.toMillis(365);

    private final Vertx vertx;
    private final Thread eventLoop;
    private final Lane[] lanes = new Lane[LANES];

    /** Call on the event loop whose timers these are. */
    public EventLoopTimers(Vertx vertx) {
        ContextInternal context = (ContextInternal) vertx.getOrCreateContext();
        if (!context.isEventLoopContext() || !context.nettyEventLoop().inEventLoop()) {
            throw new IllegalStateException("EventLoopTimers must be made on their event loop, not on " + Thread.currentThread().getName());
        }
        this.vertx = vertx;
        this.eventLoop = Thread.currentThread();
    }

    /**
     * Runs {@code action} in {@code delayMs} (at least 1 ms), on the caller's context, unless the
     * timer is cancelled first.
     */
    public Timer set(long delayMs, Handler<Void> action) {
        checkThread();
        // Not getOrCreateContext: on this thread outside a context, that would make one on another
        // event loop, where the Vert.x timers below would fire.
        if (!(Vertx.currentContext() instanceof ContextInternal context)) {
            throw new IllegalStateException("a timer set on " + eventLoop.getName() + " outside a Vert.x context");
        }
        long delay = Math.max(1, delayMs);
        Lane lane = delay <= MOST_LANE_DELAY_MS ? laneFor(delay) : null;
        if (lane == null) {
            Timer timer = new Timer(null, context, action, 0);
            // Vertx.setTimer, not the context's: only the former takes the deployment's close hook.
            timer.vertxTimer = vertx.setTimer(delay, id -> timer.fire());
            return timer;
        }
        return lane.append(context, action);
    }

    /** The lane of {@code delayMs}, made if there is room; null when every lane has another delay. */
    private Lane laneFor(long delayMs) {
        for (int i = 0; i < LANES; i++) {
            Lane lane = lanes[i];
            if (lane == null) {
                lanes[i] = lane = new Lane(delayMs);
                return lane;
            }
            if (lane.delayMs == delayMs) {
                return lane;
            }
        }
        return null;
    }

    private void checkThread() {
        if (Thread.currentThread() != eventLoop) {
            throw new IllegalStateException("a timer of " + eventLoop.getName() + " used from " + Thread.currentThread().getName());
        }
    }

    /** Cancels {@code timer} unless it is null (none was set). */
    public static void cancel(Timer timer) {
        if (timer != null) {
            timer.cancel();
        }
    }

    /** One timer: in a lane, or a Vert.x timer of its own ({@link #lane} null). */
    public final class Timer {
        private final Lane lane;
        private final ContextInternal context;
        private Handler<Void> action;  // null once it fired or was cancelled
        private final long dueNanos;
        private Timer previous;
        private Timer next;
        private long vertxTimer = -1;

        private Timer(Lane lane, ContextInternal context, Handler<Void> action, long dueNanos) {
            this.lane = lane;
            this.context = context;
            this.action = action;
            this.dueNanos = dueNanos;
        }

        /** It will not run, if it did not yet. Cancelling twice, or after it ran, does nothing. */
        public void cancel() {
            checkThread();
            if (action == null) {
                return;
            }
            action = null;
            if (lane == null) {
                vertx.cancelTimer(vertxTimer);
            } else {
                lane.unlink(this);
            }
        }

        private void fire() {
            Handler<Void> run = action;
            action = null;
            if (run != null) {
                // As a Vert.x timer's handler: on its context, a failure reported there, not thrown into the lane.
                context.emit(null, run);
            }
        }
    }

    /**
     * Timers of one delay, soonest due first, since they were set in that order: one Vert.x timer,
     * set for the head, fires those due and is set again for the next.
     */
    private final class Lane {
        private final long delayMs;
        private Timer head;
        private Timer tail;
        /** The Vert.x timer set for the head, or -1; left to fire when its timer is cancelled (it finds nothing due, and moves on). */
        private long vertxTimer = -1;

        Lane(long delayMs) {
            this.delayMs = delayMs;
        }

        Timer append(ContextInternal context, Handler<Void> action) {
            Timer timer = new Timer(this, context, action, System.nanoTime() + delayMs * 1_000_000);
            if (tail == null) {
                head = tail = timer;
            } else {
                timer.previous = tail;
                tail.next = timer;
                tail = timer;
            }
            if (vertxTimer < 0) {
                armFor(head);
            }
            return timer;
        }

        void unlink(Timer timer) {
            if (timer.previous == null) {
                head = timer.next;
            } else {
                timer.previous.next = timer.next;
            }
            if (timer.next == null) {
                tail = timer.previous;
            } else {
                timer.next.previous = timer.previous;
            }
            timer.previous = timer.next = null;
        }

        /**
         * Sets the lane's Vert.x timer for {@code first}'s due time. One set already is never later:
         * it was set for a timer that came before, and timers come due in the order they came.
         */
        private void armFor(Timer first) {
            long inMs = Math.max(1, (first.dueNanos - System.nanoTime() + 999_999) / 1_000_000);
            vertxTimer = vertx.setTimer(inMs, id -> fired());
        }

        private void fired() {
            vertxTimer = -1;
            long now = System.nanoTime();
            while (head != null && head.dueNanos - now <= 0) {
                Timer due = head;
                unlink(due);
                due.fire();
            }
            if (head != null && vertxTimer < 0) {  // an action may have set it already
                armFor(head);
            }
        }
    }
}
