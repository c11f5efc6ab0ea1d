package org.cocoonjvm.gateway.limits;

import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;

/**
 * A token bucket refilled continuously at {@code perMinute / 60} a second, at most
 * {@code perMinute} full. Lock-free: every change is a compare-and-set of an immutable state, so
 * any event loop may take from it. The level may go below zero when actual use exceeds what was
 * taken up front; later takers then wait until it refills.
 */
final class TokenBucket {
    private record State(double level, long atNanos) {}

    private final double capacity;
    private final double perNano;
    private final LongSupplier clock;
    private final AtomicReference<State> state;

    TokenBucket(long perMinute, LongSupplier nanoClock) {
        this.capacity = perMinute;
        this.perNano = perMinute / 60e9;
        this.clock = nanoClock;
        this.state = new AtomicReference<>(new State(perMinute, nanoClock.getAsLong()));
    }

    /**
     * Takes {@code amount} if the bucket holds at least that much (or is full, so one request
     * larger than the whole bucket can still pass when nothing else is running).
     *
     * @param refundable what running takers hold that they may give back when they end (an
     *                   estimate larger than their use): the wait counts it as if already back,
     *                   so it may be short, never needlessly long
     * @return 0 when taken, else the seconds until enough will have refilled
     */
    long tryTake(double amount, double refundable) {
        while (true) {
            State current = state.get();
            State now = refill(current);
            if (now.level() < amount && now.level() < capacity) {
                double missing = Math.min(amount, capacity) - Math.min(capacity, now.level() + refundable);
                return Math.max(1, (long) Math.ceil(missing / perNano / 1e9));
            }
            if (state.compareAndSet(current, new State(now.level() - amount, now.atNanos()))) {
                return 0;
            }
        }
    }

    /** Adds (or, negative, removes) an amount after the fact: a refund or an overshoot. */
    void adjust(double amount) {
        while (true) {
            State current = state.get();
            State now = refill(current);
            if (state.compareAndSet(current, new State(Math.min(capacity, now.level() + amount), now.atNanos()))) {
                return;
            }
        }
    }

    private State refill(State s) {
        long t = clock.getAsLong();
        return new State(Math.min(capacity, s.level() + Math.max(0, t - s.atNanos()) * perNano), t);
    }
}
