package org.cocoonjvm.gateway.billing;

import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.ledger.LedgerUnavailableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Settlements the ledger did not take when their request ended (its database down, restarting,
 * failing over), kept and tried again in the background until it takes them, so that a blip of
 * the database does not hold a client's funds until the gateway restarts. The one owner of them:
 * a settling request hands its settlement over and forgets it; one retry round at a time, on the
 * ledger's executor, takes them out. Bounded by the reservations in flight when the ledger went
 * away, since none is taken while it is down.
 *
 * <p>A retry never charges twice: ending a reservation is one state change of its row, so a
 * retry of a settlement that did commit (its connection lost at the COMMIT) finds the row ended
 * and gets that first outcome back. If the reservation was ended meanwhile by recovery (this
 * gateway's next start, had it stopped, or another gateway's sweep, had this one lost its lease),
 * the retry is refused with {@link ReservationRecoveredException} and dropped: that recovery billed
 * the last checkpoint, once. Nothing here survives a restart; the restart's recovery is what ends
 * those reservations then.
 */
final class PendingSettlements {
    private static final Logger log = LoggerFactory.getLogger(PendingSettlements.class);
    /** The first retry comes soon (a failover takes seconds), later ones at most a lease beat apart. */
    private static final long FIRST_DELAY_MS = 250;
    private static final long MOST_DELAY_MS = 5_000;

    private final Executor ledger;
    private final Queue<Pending> queue = new ConcurrentLinkedQueue<>();
    /** A retry round is scheduled or running: at most one at a time. */
    private final AtomicBoolean scheduled = new AtomicBoolean();
    /** The wait before the next round: doubled by a failed round, reset once none is pending. */
    private volatile long delayMs = FIRST_DELAY_MS;

    /** One settlement: what to run again, and what it bills, for the logs. */
    private static final class Pending {
        final String requestId;
        final Reservation reservation;
        final long costNanoton;
        final Supplier<Settlement> bill;
        final long queuedNanos = System.nanoTime();
        /** Tries so far, the one that failed in the request included. */
        int attempts = 1;

        Pending(String requestId, Reservation reservation, long costNanoton, Supplier<Settlement> bill) {
            this.requestId = requestId;
            this.reservation = reservation;
            this.costNanoton = costNanoton;
            this.bill = bill;
        }
    }

    /** @param ledger runs the retries, as it runs every call into the book */
    PendingSettlements(Executor ledger) {
        this.ledger = ledger;
    }

    /**
     * Keeps a settlement that failed with {@code failure} until the ledger takes it.
     *
     * @param bill ends the reservation; safe to run again after any failure
     */
    void add(String requestId, Reservation reservation, long costNanoton, Supplier<Settlement> bill,
             LedgerUnavailableException failure) {
        queue.add(new Pending(requestId, reservation, costNanoton, bill));
        log.warn("request {}: the ledger did not take its settlement ({} nanoTON, reservation {}), retrying in the "
                + "background ({} pending): {}", requestId, costNanoton, reservation.id(), queue.size(), failure.getMessage());
        scheduleRound();
    }

    /** Settlements not taken yet. */
    int size() {
        return queue.size();
    }

    /** The nanoTON they bill, for the shutdown's log line. */
    long nanoton() {
        return queue.stream().mapToLong(p -> p.costNanoton).sum();
    }

    private void scheduleRound() {
        if (scheduled.compareAndSet(false, true)) {
            CompletableFuture.delayedExecutor(delayMs, TimeUnit.MILLISECONDS, ledger).execute(this::round);
        }
    }

    /**
     * Tries each pending settlement, oldest first, until the ledger fails one: then the database is
     * still away, so the round ends and the next one waits twice as long. The failed one goes to
     * the back, so that one the ledger refuses for a reason of its own does not hold up the rest.
     */
    private void round() {
        Pending next;
        while ((next = queue.peek()) != null) {
            next.attempts++;
            try {
                Settlement settled = next.bill.get();
                queue.remove(next);
                log.info("request {}: settled at last, charging {} nanoTON on reservation {} after {} attempts in {} ms "
                        + "({} still pending)", next.requestId, settled.chargedNanoton(), next.reservation.id(), next.attempts,
                        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - next.queuedNanos), queue.size());
            } catch (LedgerUnavailableException e) {
                queue.remove(next);
                queue.add(next);
                delayMs = Math.min(2 * delayMs, MOST_DELAY_MS);
                log.warn("ledger: {} settlements still pending, next try in {} ms: {}", queue.size(), delayMs, e.getMessage());
                break;
            } catch (ReservationRecoveredException e) {
                queue.remove(next);
                log.error("request {}: not billed its final {} nanoTON: {} (this gateway lost its lease before the ledger "
                        + "took its settlement)", next.requestId, next.costNanoton, e.getMessage());
            } catch (RuntimeException e) {
                queue.remove(next);
                log.error("request {}: the ledger refused its settlement ({} nanoTON); reservation {} stays open until "
                        + "the gateway next starts", next.requestId, next.costNanoton, next.reservation.id(), e);
            }
        }
        if (queue.isEmpty()) {
            delayMs = FIRST_DELAY_MS;
        }
        scheduled.set(false);
        if (!queue.isEmpty()) {
            scheduleRound();   // what failed this round, or one added while it ran
        }
    }
}
