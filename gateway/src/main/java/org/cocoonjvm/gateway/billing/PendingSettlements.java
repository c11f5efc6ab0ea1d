package org.cocoonjvm.gateway.billing;

import java.io.IOException;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.cocoonjvm.billing.accounts.AccountBook;
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
 * and gets that first outcome back. If the reservation was ended meanwhile by recovery (another
 * gateway's sweep, had this one lost its lease), the retry is refused with {@link
 * ReservationRecoveredException} and dropped: that recovery billed the last checkpoint, once.
 *
 * <p>Each settlement is written to the {@link PendingJournal} before it is queued, and marked
 * there once the ledger takes it (or refuses it for good): what the gateway still holds when it
 * stops is replayed by its next start, before that start's recovery. With a journal in memory
 * only, the restart's recovery ends those reservations at their last checkpoints.
 */
final class PendingSettlements {
    private static final Logger log = LoggerFactory.getLogger(PendingSettlements.class);
    /** The first retry comes soon (a failover takes seconds), later ones at most a lease beat apart. */
    private static final long FIRST_DELAY_MS = 250;
    private static final long MOST_DELAY_MS = 5_000;

    private final Executor ledger;
    private final AccountBook accounts;
    private final PendingJournal journal;
    /**
     * Writes the journal for a settlement handed over on an event loop (the ledger hangs, its
     * threads with it): an fsync is no work for a loop. Null for a journal in memory.
     */
    private final ExecutorService writer;
    private final Queue<Pending> queue = new ConcurrentLinkedQueue<>();
    /** A retry round is scheduled or running: at most one at a time. */
    private final AtomicBoolean scheduled = new AtomicBoolean();
    /** The wait before the next round: doubled by a failed round, reset once none is pending. */
    private volatile long delayMs = FIRST_DELAY_MS;

    /** One settlement: what to run again, and whether the journal holds it. */
    private static final class Pending {
        final PendingSettlement settlement;
        final boolean journaled;
        final long queuedNanos = System.nanoTime();
        /** Tries so far, the one that failed in the request included. */
        int attempts = 1;

        Pending(PendingSettlement settlement, boolean journaled) {
            this.settlement = settlement;
            this.journaled = journaled;
        }
    }

    /**
     * @param ledger   runs the retries, as it runs every call into the book
     * @param accounts the book they settle on
     * @param journal  where they are kept for the next start
     */
    PendingSettlements(Executor ledger, AccountBook accounts, PendingJournal journal) {
        this.ledger = ledger;
        this.accounts = accounts;
        this.journal = journal;
        this.writer = journal.file().isEmpty() ? null
                : Executors.newSingleThreadExecutor(Thread.ofPlatform().name("pending-journal").daemon().factory());
    }

    /**
     * Keeps a settlement that failed with {@code failure} until the ledger takes it: written to the
     * journal, on the caller's thread, then queued. Call it off the event loops.
     */
    void add(PendingSettlement settlement, LedgerUnavailableException failure) {
        boolean journaled = journal.file().isPresent();
        if (journaled) {
            try {
                journal.keep(settlement);
            } catch (IOException | RuntimeException e) {
                journaled = false;
                log.error("request {}: could not keep its settlement in {} ({}): should the gateway stop before the ledger "
                        + "takes it, the next start ends its reservation at its last checkpoint", settlement.requestId(),
                        journal.file().get(), e.toString());
            }
        }
        queue.add(new Pending(settlement, journaled));
        log.warn("request {}: the ledger did not take its settlement ({} nanoTON, reservation {}), retrying in the "
                + "background ({} pending): {}", settlement.requestId(), settlement.costNanoton(), settlement.reservation().id(),
                queue.size(), failure.getMessage());
        scheduleRound();
    }

    /**
     * {@link #add}, for a caller on an event loop: the journal is written on a thread of its own.
     *
     * @return completes once the settlement is kept
     */
    CompletionStage<Void> addLater(PendingSettlement settlement, LedgerUnavailableException failure) {
        if (writer == null) {
            add(settlement, failure);
            return CompletableFuture.completedStage(null);
        }
        try {
            return CompletableFuture.runAsync(() -> add(settlement, failure), writer);
        } catch (RejectedExecutionException stopped) {
            add(settlement, failure);   // the gateway is closing: write it here, late rather than never
            return CompletableFuture.completedStage(null);
        }
    }

    /** Settlements not taken yet. */
    int size() {
        return queue.size();
    }

    /** The nanoTON they bill, for the shutdown's log line. */
    long nanoton() {
        return queue.stream().mapToLong(p -> p.settlement.costNanoton()).sum();
    }

    /** Of those, the ones that the journal does not hold (it could not be written, or it is in memory). */
    int notJournaled() {
        return (int) queue.stream().filter(p -> !p.journaled).count();
    }

    /** Lets the journal writes already handed over finish (5 s at most); call once no request can settle any more. */
    void close() {
        if (writer != null) {
            writer.shutdown();
            try {
                if (!writer.awaitTermination(5, TimeUnit.SECONDS)) {
                    log.warn("ledger: pending settlements were still being written to {} after 5 s", journal.file().get());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
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
            PendingSettlement s = next.settlement;
            try {
                Settlement settled = s.bill(accounts);
                queue.remove(next);
                journal.taken(s);
                log.info("request {}: settled at last, charging {} nanoTON on reservation {} after {} attempts in {} ms "
                        + "({} still pending)", s.requestId(), settled.chargedNanoton(), s.reservation().id(), next.attempts,
                        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - next.queuedNanos), queue.size());
            } catch (LedgerUnavailableException e) {
                queue.remove(next);
                queue.add(next);
                delayMs = Math.min(2 * delayMs, MOST_DELAY_MS);
                log.warn("ledger: {} settlements still pending, next try in {} ms: {}", queue.size(), delayMs, e.getMessage());
                break;
            } catch (ReservationRecoveredException e) {
                queue.remove(next);
                journal.taken(s);
                log.error("request {}: not billed its final {} nanoTON: {} (this gateway lost its lease before the ledger "
                        + "took its settlement)", s.requestId(), s.costNanoton(), e.getMessage());
            } catch (RuntimeException e) {
                queue.remove(next);
                journal.taken(s);
                log.error("request {}: the ledger refused its settlement ({} nanoTON); reservation {} stays open until "
                        + "the gateway next starts", s.requestId(), s.costNanoton(), s.reservation().id(), e);
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
