package org.cocoonjvm.billing.ledger;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.accounts.Reservation;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Reserve + settle round trips per second, the ledger's cost per request, on each book. A timed
 * loop rather than JMH: each round trip is a database commit (tens of microseconds to
 * milliseconds), far above what JMH's care about the JIT is for. Skipped unless
 * {@code -Dledger.bench=true}; the command and results are in docs/benchmarks.md.
 */
class LedgerThroughputBenchmark {
    private static final long WARMUP_MS = 3_000;
    private static final long MEASURE_MS = 10_000;

    @Test
    void reserveSettleRoundTrips() throws Exception {
        Assumptions.assumeTrue(Boolean.getBoolean("ledger.bench"), "benchmark: run with -Dledger.bench=true");
        List<String> lines = new ArrayList<>();
        for (int threads : new int[] {1, 8}) {
            lines.add(run("in-memory", new InMemoryAccountBook(Clock.systemUTC()), threads));
            try (JdbcAccountBook h2 = JdbcAccountBook.open(TestDatabase.H2.newDatabaseUrl(), Clock.systemUTC(), 8)) {
                lines.add(run("H2 file", h2, threads));
            }
            // For comparison only: H2's own default, which a SIGKILL can cost the last half second of.
            try (JdbcAccountBook lazy = JdbcAccountBook.open(TestDatabase.H2.newDatabaseUrl() + ";WRITE_DELAY=500",
                    Clock.systemUTC(), 8)) {
                lines.add(run("H2 file, WRITE_DELAY=500", lazy, threads));
            }
            PostgresServer durable = PostgresServer.startDurable();
            try (JdbcAccountBook pg = JdbcAccountBook.open(durable.newDatabaseUrl(), Clock.systemUTC(), 8)) {
                lines.add(run("PostgreSQL (fsync on)", pg, threads));
            } finally {
                durable.stop();
            }
        }
        lines.forEach(System.out::println);
    }

    /** Each thread has its own account, as concurrent requests mostly come from different clients. */
    private static String run(String name, AccountBook book, int threads) throws Exception {
        for (int t = 0; t < threads; t++) {
            book.open("bench-" + t);
            book.credit("bench-" + t, Long.MAX_VALUE / 4, "bench-grant-" + t);
        }
        loop(book, threads, WARMUP_MS);
        long done = loop(book, threads, MEASURE_MS);
        return String.format("%-26s threads=%d  %,10.0f reserve+settle/s", name, threads, done * 1000.0 / MEASURE_MS);
    }

    private static long loop(AccountBook book, int threads, long millis) throws InterruptedException {
        AtomicLong done = new AtomicLong();
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        CountDownLatch finished = new CountDownLatch(threads);
        for (int t = 0; t < threads; t++) {
            String account = "bench-" + t;
            Thread.ofPlatform().start(() -> {
                while (System.nanoTime() < end) {
                    Reservation r = book.reserve(account, 1_000);
                    book.settle(r, 400);
                    done.incrementAndGet();
                }
                finished.countDown();
            });
        }
        finished.await();
        return done.get();
    }
}
