package org.cocoonjvm.billing.ledger;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A gateway's heartbeat on a shared ledger: every {@code interval}, on a thread of its own (the
 * calls block on JDBC), it {@link JdbcAccountBook#renewLease() renews} the book's lease and
 * {@link JdbcAccountBook#sweep() sweeps} the reservations of gateways whose lease expired. A
 * failing database is logged and tried again at the next tick; a lost lease is final: the keeper
 * stops and hands the {@link LeaseLostException} to {@code onLost}, once, whose job is to stop this
 * process from serving (the launcher exits, so that a supervisor starts a new incarnation). Any
 * call into the book that finds the lease lost (a reservation, a channel state) does the same at
 * once, without waiting for the next beat.
 *
 * <p>After beats that failed, the keeper renews but holds its sweeps for {@link #SWEEP_HOLD_BEATS}
 * beats: an outage of the database stops every gateway's renewals alike, so a peer whose lease
 * ran out meanwhile is as likely alive as this one, and needs a beat of its own to renew. Sweeping
 * at once would fence live gateways after any outage longer than the expiry (audit D: a 40 s
 * outage with a 30 s expiry stopped one of two gateways, a 50 s hang both).
 */
public final class LeaseKeeper implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(LeaseKeeper.class);
    /** Renewal every 5 s: a lease of minutes survives dozens of missed beats. */
    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(5);
    /** Peers beat at the same interval: within two of ours, each live one has renewed. */
    static final int SWEEP_HOLD_BEATS = 2;

    private final JdbcAccountBook book;
    private final Consumer<LeaseLostException> onLost;
    private final Consumer<List<RecoveredReservation>> onSwept;
    private final AtomicBoolean lost = new AtomicBoolean();
    private final ScheduledExecutorService timer;
    /** Beats in a row that failed: an operator reading the log wants to know when they stop. Keeper's thread only. */
    private int failedBeats;
    /** Beats left before sweeping again, after an outage. Keeper's thread only. */
    private int sweepsHeld;

    private LeaseKeeper(JdbcAccountBook book, Consumer<LeaseLostException> onLost, Consumer<List<RecoveredReservation>> onSwept) {
        this.book = book;
        this.onLost = onLost;
        this.onSwept = onSwept;
        this.timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("ledger-lease").daemon().factory());
    }

    /**
     * @param interval between the end of one beat and the start of the next; keep it a small
     *                 fraction of the book's lease expiry
     * @param onLost   runs once when the lease is found lost, on the thread of the call that found it
     */
    public static LeaseKeeper start(JdbcAccountBook book, Duration interval, Consumer<LeaseLostException> onLost) {
        return start(book, interval, onLost, swept -> { });
    }

    /**
     * @param onSwept told what each sweep ended, on the keeper's thread: the requests of a gateway that
     *                died are billed here, so they are this process's to log and count (audit V, V-8)
     */
    public static LeaseKeeper start(JdbcAccountBook book, Duration interval, Consumer<LeaseLostException> onLost,
                                    Consumer<List<RecoveredReservation>> onSwept) {
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("a lease renewal interval must be positive, got " + interval);
        }
        LeaseKeeper keeper = new LeaseKeeper(Objects.requireNonNull(book, "book"), Objects.requireNonNull(onLost, "onLost"),
                Objects.requireNonNull(onSwept, "onSwept"));
        book.whenLeaseLost(keeper::lost);
        keeper.timer.scheduleWithFixedDelay(keeper::beat, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
        return keeper;
    }

    /** One heartbeat: renew, then sweep. */
    void beat() {
        if (lost.get()) {
            return;
        }
        try {
            book.renewLease();
            if (failedBeats > 0) {
                log.info("ledger: lease renewed again after {} failed beats; sweeping peers' expired leases resumes in {} beats, "
                        + "when each live one has renewed its own", failedBeats, SWEEP_HOLD_BEATS);
                failedBeats = 0;
                sweepsHeld = SWEEP_HOLD_BEATS;
            }
            if (sweepsHeld > 0) {
                sweepsHeld--;
                return;
            }
            List<RecoveredReservation> swept = book.sweep();
            if (!swept.isEmpty()) {
                log.warn("ledger: ended {} reservations of gateways whose lease expired, charging {} nanoTON "
                        + "(their last recorded progress)", swept.size(),
                        swept.stream().mapToLong(r -> r.settlement().chargedNanoton()).sum());
                onSwept.accept(swept);
            }
        } catch (LeaseLostException e) {
            lost(e);
        } catch (RuntimeException e) {
            failedBeats++;
            log.warn("ledger: lease renewal or sweep failed, trying again in the next beat: {}", e.getMessage());
        }
    }

    private void lost(LeaseLostException e) {
        if (lost.compareAndSet(false, true)) {
            log.error("ledger: {}", e.getMessage());
            timer.shutdown();
            onLost.accept(e);
        }
    }

    @Override
    public void close() throws InterruptedException {
        timer.shutdownNow();
        timer.awaitTermination(5, TimeUnit.SECONDS);
    }
}
