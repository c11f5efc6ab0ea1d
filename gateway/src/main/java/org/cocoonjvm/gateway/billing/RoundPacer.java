package org.cocoonjvm.gateway.billing;

import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * When {@link ChannelBilling}'s next payment round may start: a gap after the last one started,
 * doubling with each round failed in a row (the ledger unreachable, most likely) up to a most.
 * It keeps the failing run for the log too: a run is logged once, then once more when a round
 * works again, since at the 5 ms gap a ledger outage wrote 40 warnings a second. Plain state,
 * owned by the billing verticle's context.
 */
final class RoundPacer {
    private final LongSupplier nanoClock;
    private final long minGapNanos;
    private final long mostGapNanos;
    /** When the last round started: at first, as if one started a gap ago. */
    private long lastRoundNanos;
    /** Rounds failed in a row, and when the first of them started. */
    private int failedRounds;
    private long firstFailedRoundNanos;

    /**
     * @param minGapNanos  the gap while rounds work
     * @param mostGapNanos the widest gap, however many rounds failed
     */
    RoundPacer(LongSupplier nanoClock, long minGapNanos, long mostGapNanos) {
        this.nanoClock = nanoClock;
        this.minGapNanos = minGapNanos;
        this.mostGapNanos = mostGapNanos;
        this.lastRoundNanos = nanoClock.getAsLong() - minGapNanos;
    }

    /** How long until the next round may start; zero or less: now. */
    long waitNanos() {
        long gap = failedRounds == 0 ? minGapNanos : Math.min(minGapNanos << Math.min(failedRounds, 10), mostGapNanos);
        return lastRoundNanos + gap - nanoClock.getAsLong();
    }

    /** A round starts now. */
    void started() {
        lastRoundNanos = nanoClock.getAsLong();
    }

    /**
     * The round started last failed.
     *
     * @return whether it is the first failed in a row: the one to log
     */
    boolean failed() {
        if (failedRounds++ == 0) {
            firstFailedRoundNanos = lastRoundNanos;
            return true;
        }
        return false;
    }

    /** Whether the rounds before the next one failed: a round that works then ends a failing run, to log. */
    boolean failing() {
        return failedRounds > 0;
    }

    /** The rounds failed in a row so far. */
    int failedRounds() {
        return failedRounds;
    }

    /** Milliseconds since the first round failed in a row started. */
    long failingMillis() {
        return TimeUnit.NANOSECONDS.toMillis(nanoClock.getAsLong() - firstFailedRoundNanos);
    }

    /** The round started last worked: the gap is the least again. */
    void succeeded() {
        failedRounds = 0;
    }
}
