package org.cocoonjvm.billing.accounts;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Many threads on one account, against every {@link AccountBook}. The balance is kept small so that reservations collide with
 * "insufficient balance" constantly, which is where a check-then-act race would show.
 */
public abstract class AccountBookConcurrencyContract {
    private static final int THREADS = 16;

    /** A new book with no accounts. */
    protected abstract AccountBook newBook(Clock clock);

    /** Reserve rounds per thread: as many as the implementation gets through in a few seconds. */
    protected abstract int rounds();

    /** Settle/release races run on one reservation. */
    protected abstract int raceTrials();

    private final ExecutorService pool = Executors.newFixedThreadPool(THREADS + 1);

    @AfterEach
    void tearDown() throws InterruptedException {
        pool.shutdownNow();
        assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void reserveSettleRelease_manyThreads_totalsAreExactAndNothingOverdraws() throws Exception {
        AccountBook book = newBook(Clock.systemUTC());
        book.open("alice");
        book.credit("alice", 500, "initial");
        AtomicLong credited = new AtomicLong(500);
        AtomicLong charged = new AtomicLong();
        AtomicLong refusals = new AtomicLong();
        AtomicBoolean running = new AtomicBoolean(true);
        CountDownLatch start = new CountDownLatch(1);

        // A watcher reads snapshots throughout; every one must be consistent.
        List<AccountState> bad = new ArrayList<>();
        Future<?> watcher = pool.submit(() -> {
            while (running.get()) {
                AccountState s = book.balance("alice");
                if (s.availableNanoton() < 0 || s.reservedNanoton() > s.balanceNanoton()) {
                    bad.add(s);
                }
            }
        });

        List<Future<?>> workers = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            int thread = t;
            workers.add(pool.submit(() -> {
                SplittableRandom random = new SplittableRandom(thread);
                start.await();
                for (int round = 0; round < rounds(); round++) {
                    long amount = random.nextLong(1, 101);
                    Reservation reservation;
                    try {
                        reservation = book.reserve("alice", amount);
                    } catch (InsufficientBalanceException e) {
                        refusals.incrementAndGet();
                        if (random.nextInt(4) == 0 && book.credit("alice", 200, "t" + thread + "-" + round)) {
                            credited.addAndGet(200);
                        }
                        continue;
                    }
                    if (random.nextInt(10) == 0) {
                        book.release(reservation);
                    } else {
                        long cost = random.nextLong(amount + 1);
                        Settlement first = book.settle(reservation, cost);
                        charged.addAndGet(first.chargedNanoton());
                        // A duplicate from a retry path must change nothing.
                        assertThat(book.settle(reservation, amount)).isEqualTo(first);
                    }
                }
                return null;
            }));
        }
        start.countDown();
        try {
            for (Future<?> worker : workers) {
                worker.get(120, TimeUnit.SECONDS);
            }
        } finally {
            running.set(false);
        }
        watcher.get(10, TimeUnit.SECONDS);

        AccountState end = book.balance("alice");
        assertThat(bad).isEmpty();
        assertThat(refusals.get()).as("the balance was contended").isPositive();
        assertThat(end.reservedNanoton()).isZero();
        assertThat(end.spentNanoton()).isEqualTo(charged.get());
        assertThat(end.balanceNanoton()).isEqualTo(credited.get() - charged.get());
    }

    @Test
    void settleAndRelease_racingOnOneReservation_applyExactlyOnce() throws Exception {
        AccountBook book = newBook(Clock.systemUTC());
        book.open("alice");
        book.credit("alice", 1_000_000, "initial");
        for (int trial = 0; trial < raceTrials(); trial++) {
            Reservation reservation = book.reserve("alice", 1_000);
            AccountState before = book.balance("alice");
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Settlement>> racers = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                long cost = t * 50L;
                racers.add(pool.submit(() -> {
                    start.await();
                    return cost == 0 ? book.release(reservation) : book.settle(reservation, cost);
                }));
            }
            start.countDown();
            Set<Settlement> outcomes = ConcurrentHashMap.newKeySet();
            for (Future<Settlement> racer : racers) {
                outcomes.add(racer.get(10, TimeUnit.SECONDS));
            }

            assertThat(outcomes).hasSize(1);
            long charged = outcomes.iterator().next().chargedNanoton();
            assertThat(book.balance("alice")).isEqualTo(new AccountState("alice",
                    before.balanceNanoton() - charged, before.reservedNanoton() - 1_000,
                    before.spentNanoton() + charged));
        }
    }

    @Test
    void progressAndSettle_racing_settlementCoversEveryProgressThatCounted() throws Exception {
        AccountBook book = newBook(Clock.systemUTC());
        book.open("alice");
        book.credit("alice", 1_000_000, "initial");
        for (int trial = 0; trial < raceTrials(); trial++) {
            Reservation reservation = book.reserve("alice", 1_000);
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Long>> progress = new ArrayList<>();
            for (int t = 1; t < THREADS; t++) {
                long cost = t * 60L;
                progress.add(pool.submit(() -> {
                    start.await();
                    return book.recordProgress(reservation, cost) ? cost : 0L;
                }));
            }
            Future<Settlement> settle = pool.submit(() -> {
                start.await();
                return book.settle(reservation, 1);
            });
            start.countDown();
            long counted = 0;
            for (Future<Long> p : progress) {
                counted = Math.max(counted, p.get(10, TimeUnit.SECONDS));
            }

            assertThat(settle.get(10, TimeUnit.SECONDS).chargedNanoton())
                    .as("progress acknowledged before the settlement is charged").isGreaterThanOrEqualTo(counted);
        }
    }
}
