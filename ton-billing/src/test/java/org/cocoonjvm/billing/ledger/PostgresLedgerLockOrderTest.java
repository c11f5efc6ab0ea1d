package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway's hot path on one account, as a messenger backend drives it: requests reserve and
 * settle while payment rounds checkpoint every open request's progress and worker share. On
 * PostgreSQL the checkpoint took its reservations' locks before their account's, and settlements
 * the account's before the reservation's: they deadlocked under ordinary load, each deadlock a
 * one-second stall until the server broke it (audit L, 1). Clients saw only the latency, so the
 * test counts what the book ran again.
 */
class PostgresLedgerLockOrderTest {
    private static final String ACCOUNT = "acct-hot";
    private static final String CHANNEL = "00112233445566778899aabbccddeeff";
    private static final int REQUESTS = 8;
    private static final int EACH = 30;

    private JdbcAccountBook book;

    @AfterEach
    void close() {
        if (book != null) {
            book.close();
        }
    }

    @Test
    void checkpointsAndSettlementsOnOneAccount_neverDeadlock_andBillEachRequestOnce() throws Exception {
        book = JdbcAccountBook.open(TestDatabase.POSTGRES.newDatabaseUrl(), Clock.systemUTC(), REQUESTS + 2);
        book.open(ACCOUNT);
        book.credit(ACCOUNT, 1_000_000_000L, "grant");
        Map<Reservation, AtomicLong> running = new ConcurrentHashMap<>();
        AtomicBoolean done = new AtomicBoolean();
        AtomicLong billed = new AtomicLong();
        ExecutorService threads = Executors.newFixedThreadPool(REQUESTS + 1);
        try {
            Future<?> rounds = threads.submit(() -> {
                while (!done.get()) {
                    Map<Reservation, Long> progress = new HashMap<>();
                    Map<Reservation, WorkerShare> shares = new HashMap<>();
                    running.forEach((reservation, cost) -> {
                        progress.put(reservation, cost.incrementAndGet());
                        shares.put(reservation, new WorkerShare(CHANNEL, cost.get() / 2, null, null));
                    });
                    if (!progress.isEmpty()) {
                        book.recordProgress(progress, shares);
                    }
                }
                return null;
            });
            Future<?>[] requests = new Future<?>[REQUESTS];
            for (int r = 0; r < REQUESTS; r++) {
                int worker = r;
                requests[r] = threads.submit(() -> {
                    for (int i = 0; i < EACH; i++) {
                        Reservation reservation = book.reserve(ACCOUNT, 1_000);
                        running.put(reservation, new AtomicLong());
                        Thread.sleep(2);
                        long cost = 100 + i;
                        book.settle(reservation, new RequestRecord("req-" + worker + "-" + i, "w", CHANNEL, "m",
                                new TokenCounts(1, 0, 1, 0), cost, cost / 2));
                        running.remove(reservation);
                        billed.addAndGet(cost);
                    }
                    return null;
                });
            }
            for (Future<?> request : requests) {
                request.get(120, TimeUnit.SECONDS);
            }
            done.set(true);
            rounds.get(30, TimeUnit.SECONDS);
        } finally {
            threads.shutdownNow();
        }

        assertThat(book.racesRunAgain()).as("transactions run again after a lost race").doesNotContainKey("deadlock");
        assertThat(book.balance(ACCOUNT).spentNanoton()).isEqualTo(billed.get());
        assertThat(book.balance(ACCOUNT).reservedNanoton()).isZero();
    }
}
